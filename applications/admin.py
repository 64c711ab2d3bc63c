from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from scheduling.status import InvalidTransition, Status

from .admin_scoping import OrganizationScopedAdmin, ScopedInline, mask, scoped
from .admin_audit import AuditedAdmin, ReadOnlyAdmin, register_history
from .models import (
    Application, ApplicationEmail, Cohort, Membership, Organization, StatusChange, TimelineEntry,
    UserSettings,
)


class ArchivedFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Active"), ("yes", "Archived")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(archived_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class MembershipInline(ScopedInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    org_lookup = ""
    list_display = ("name", "slug", "time_zone")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    org_lookup = "organization"
    list_display = ("user", "organization", "role")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name")
    raw_id_fields = ("user",)


@admin.register(Cohort)
class CohortAdmin(OrganizationScopedAdmin, AuditedAdmin):
    """Cohorts are archived, never deleted; an archived one is read-only until unarchived.

    The webhook key and secrets are never shown in full here (only their last four characters):
    the cohort's own settings page and `seed_demo` are where an admin copies them."""

    org_lookup = "organization"
    list_display = ("name", "slug", "organization", "reply_to_email", "created_at", "archived_at")
    list_filter = (ArchivedFilter, "organization")
    search_fields = ("name", "slug")
    # Secrets and the URL key are shown masked, never as form values (set them on the cohort's
    # settings page; rotate the Cal.com ones with the actions below).
    exclude = ("webhook_key", "webhook_secret", "calendly_signing_key", "cronofy_client_secret", "calendar_token")
    readonly_fields = ("webhook_url", "webhook_secret_masked", "calendly_webhook_url", "cronofy_webhook_url",
                       "calendly_signing_key_masked", "cronofy_client_secret_masked", "archived_at")
    actions = ["archive", "unarchive", "rotate_secret", "rotate_key"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_archived:
            return False
        return super().has_change_permission(request, obj)

    @admin.action(description="Archive selected cohorts (read-only, closed to bookings)")
    def archive(self, request, queryset):
        for cohort in queryset:
            cohort.archive(user=request.user)
        self.message_user(request, "Archived: read-only, hidden from the switcher; webhooks get 410.")

    @admin.action(description="Unarchive selected cohorts")
    def unarchive(self, request, queryset):
        for cohort in queryset:
            cohort.unarchive(user=request.user)
        self.message_user(request, "Unarchived: editable and open to bookings again.")

    @admin.display(description="Webhook URL (Cal.com)")
    def webhook_url(self, obj):
        if not obj.pk:
            return "-"
        return obj.webhook_path().replace(obj.webhook_key, mask(obj.webhook_key))

    @admin.display(description="Webhook secret")
    def webhook_secret_masked(self, obj):
        return mask(obj.webhook_secret) if obj.pk else "-"

    @admin.display(description="Webhook URL (Calendly)")
    def calendly_webhook_url(self, obj):
        return obj.webhook_path("calendly").replace(obj.webhook_key, mask(obj.webhook_key)) if obj.pk else "-"

    @admin.display(description="Webhook URL (Cronofy)")
    def cronofy_webhook_url(self, obj):
        return obj.webhook_path("cronofy").replace(obj.webhook_key, mask(obj.webhook_key)) if obj.pk else "-"

    @admin.display(description="Calendly signing key")
    def calendly_signing_key_masked(self, obj):
        return mask(obj.calendly_signing_key) or "-"

    @admin.display(description="Cronofy client secret")
    def cronofy_client_secret_masked(self, obj):
        return mask(obj.cronofy_client_secret) or "-"

    @admin.action(description="Rotate the webhook signing secret")
    def rotate_secret(self, request, queryset):
        for cohort in queryset:
            cohort.rotate_webhook_secret()
        self.message_user(request, "New secrets set: paste them into Cal.com's webhook form.")

    @admin.action(description="Rotate the webhook URL key")
    def rotate_key(self, request, queryset):
        for cohort in queryset:
            cohort.rotate_webhook_key()
        self.message_user(request, "New webhook URLs set: update them in Cal.com.")


class StatusChangeInline(ScopedInline):
    model = StatusChange
    extra = 0
    can_delete = False
    fields = ("created_at", "old_status", "new_status", "delivery", "user", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        # Each row names its delivery: load them in the same query, without their raw bodies.
        return super().get_queryset(request).select_related("delivery", "user").defer("delivery__body")


class ApplicationEmailInline(ScopedInline):
    model = ApplicationEmail
    extra = 0


def _move_action(target):
    def action(modeladmin, request, queryset):
        moved, refused = 0, []
        for application in queryset:
            try:
                application.move_to(target, user=request.user, note=f"Changed by {request.user} in admin")
                moved += 1
            except InvalidTransition as exc:
                refused.append(f"{application.applicant_name}: {exc}")
        if moved:
            modeladmin.message_user(request, f"Moved {moved} to {target.label}.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)

    action.__name__ = f"move_to_{target.value}"
    action.short_description = f"Move status to “{target.label}”"
    return action


# Written by the state machine and the schedule sync from bookings: editing them by hand would
# make the application disagree with its bookings. Status moves through the actions.
DERIVED_FIELDS = (
    "cohort", "status", "current_stage", "interview_start", "interview_end", "interview_meeting_url",
    "interview_booking_uid", "interview_time_zone", "interview_event_type", "interview_ended_at",
    "pending_booking_uid", "pending_start", "pending_end", "reschedule_requested", "reschedule_reason",
    "updated_at", "created_at",
)


@admin.register(Application)
class ApplicationAdmin(OrganizationScopedAdmin, AuditedAdmin):
    """Edits are recorded (history and the timeline, old → new); derived fields are read-only."""

    list_display = ("applicant_name", "contact_email", "cohort", "status", "current_stage",
                    "interview_start", "updated_at")
    list_filter = ("status", "current_stage", "cohort", "reschedule_requested")
    search_fields = ("applicant_name", "contact_email", "public_id", "interview_booking_uid")
    list_select_related = ("cohort",)
    inlines = [ApplicationEmailInline, StatusChangeInline]
    actions = [_move_action(status) for status in Status]

    def get_readonly_fields(self, request, obj=None):
        # A new application picks its cohort; after that it belongs there for good.
        return DERIVED_FIELDS if obj is not None else ("status", "current_stage", "updated_at", "created_at")

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.cohort.is_archived:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Only a row nothing has happened to yet (an import mistake); PROTECT guards the rest.
        if obj is not None and (obj.status_changes.exists() or obj.timeline_entries.exists()
                                or obj.bookings.exists() or obj.deliveries.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ApplicationEmail)
class ApplicationEmailAdmin(OrganizationScopedAdmin):
    org_lookup = "application__cohort__organization"
    list_display = ("email", "application", "created_at")
    search_fields = ("email", "application__applicant_name", "application__contact_email")
    raw_id_fields = ("application",)


@admin.register(StatusChange)
class StatusChangeAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """The record of every status change: read-only for everyone, superusers included."""

    org_lookup = "application__cohort__organization"
    list_display = ("application", "old_status", "new_status", "created_at", "delivery", "user")
    list_filter = ("new_status",)
    search_fields = ("application__applicant_name", "application__contact_email", "note")
    list_select_related = ("application", "user", "delivery")
    raw_id_fields = ("application", "delivery", "user")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("delivery__body")  # the list shows deliveries by name


@admin.register(UserSettings)
class UserSettingsAdmin(OrganizationScopedAdmin):
    org_lookup = None
    user_lookup = "user"
    list_display = ("user", "time_zone")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    org_lookup = "application__cohort__organization"
    list_display = ("at", "application", "kind", "user", "delivery")
    list_filter = ("kind",)
    search_fields = ("application__applicant_name", "application__contact_email", "kind")
    # The delivery is in the list: joined, not a query per row, and without its body.
    list_select_related = ("application", "user", "delivery")
    raw_id_fields = ("application", "delivery", "user")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("delivery__body")


register_history(Application)
register_history(Cohort)


# Users and groups span organizations: staff who are not superusers see only the users of the
# organizations they administer, cannot raise anyone's privileges, and do not manage groups.
admin.site.unregister(get_user_model())
admin.site.unregister(Group)

PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


@admin.register(get_user_model())
class ScopedUserAdmin(UserAdmin):
    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *PRIVILEGE_FIELDS)


@admin.register(Group)
class SuperuserOnlyGroupAdmin(GroupAdmin):
    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class ScopedByUsername:
    """django-axes' records: staff who are not superusers see those of their organizations' users."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        usernames = scoped(get_user_model().objects.all(), request.user).values("username")
        return queryset.filter(username__in=usernames)


for model, model_admin in ((AccessAttempt, AccessAttemptAdmin), (AccessLog, AccessLogAdmin),
                           (AccessFailureLog, AccessFailureLogAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, type(f"Scoped{model_admin.__name__}", (ScopedByUsername, model_admin), {}))
