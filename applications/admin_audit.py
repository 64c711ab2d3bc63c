"""Read-only admin pieces for the audit: history rows and timeline entries nobody may rewrite."""

from django.contrib import admin
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lists and shows rows; nobody (superusers included) may add, change or delete them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class HistoryAdmin(ReadOnlyAdmin):
    """A historical model's rows: who changed what, when, and the row as it was then."""

    list_display = ("history_date", "history_type", "history_user", "history_object_label",
                    "history_change_reason")
    list_filter = ("history_type",)
    date_hierarchy = "history_date"
    list_select_related = ("history_user",)

    @admin.display(description="Row")
    def history_object_label(self, obj):
        return f"#{obj.id} {obj}"


def register_history(model):
    """Register `model`'s historical model (django-simple-history) read-only in the admin.

    Scoped like the model's own admin (register that first): staff who are not superusers see
    the history of their organizations' rows only (applications/admin_scoping.py).
    """
    from .admin_scoping import OrganizationScopedAdmin

    lookup = getattr(admin.site._registry.get(model), "org_lookup", "cohort__organization")
    scoped_admin = type(f"Scoped{model.__name__}HistoryAdmin", (OrganizationScopedAdmin, HistoryAdmin),
                        {"org_lookup": lookup})
    admin.site.register(model.history.model, scoped_admin)


class AuditedAdmin(SimpleHistoryAdmin):
    """A ModelAdmin with django-simple-history's read-only History pages (revert is disabled)."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # The library answers 500 for a version id that is not a number; that is a 404.
        if not (str(version_id).isdigit() and str(object_id).isdigit()):
            raise Http404("No such version.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        if not str(object_id).isdigit():
            raise Http404("No such row.")
        return super().history_view(request, object_id, extra_context)
