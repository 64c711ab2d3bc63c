"""The Django admin split per organization: staff who are not superusers see their organizations only.

"Their organizations" are those where they are an org admin (Membership.Role.ADMIN):
the admin site changes things, and members (reviewers) only read, in the app. Every
ModelAdmin of an organization's rows inherits OrganizationScopedAdmin and names the
path from its model to the Organization (`org_lookup`); the querysets of the
changelist, search, actions, change/delete/history views, foreign-key choices and
list filters then hold only those organizations' rows. Superusers see everything.
Secrets are shown masked to everyone (`mask`).
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

from .models import Membership, Organization


def administered_organizations(user):
    """Return the Organizations `user` is an org admin of (a queryset)."""
    return Organization.objects.filter(memberships__user=user, memberships__role=Membership.Role.ADMIN)


def mask(secret, shown=4):
    """Return `secret` with all but its last `shown` characters hidden ("…abcd"); "" stays ""."""
    return f"…{secret[-shown:]}" if secret else ""


def scoped(queryset, user):
    """Return `queryset` cut to the rows `user` may see in the admin.

    Uses the `org_lookup` of the model's registered OrganizationScopedAdmin; users
    are cut to those sharing an administered organization. Models with neither
    are returned unchanged (Django's model permissions still apply to them).
    """
    if user.is_superuser:
        return queryset
    model = queryset.model
    if model is get_user_model():
        return queryset.filter(
            is_superuser=False, memberships__organization__in=administered_organizations(user)
        ).distinct()
    model_admin = admin.site._registry.get(model)
    user_lookup = getattr(model_admin, "user_lookup", None)
    if user_lookup:
        return queryset.filter(**{f"{user_lookup}__in": scoped(get_user_model().objects.all(), user)})
    lookup = getattr(model_admin, "org_lookup", None)
    if lookup is None:
        return queryset
    path = f"{lookup}__in" if lookup else "pk__in"
    return queryset.filter(**{path: administered_organizations(user)})


class ScopedChoicesMixin:
    """Foreign-key and many-to-many choices cut to the user's organizations (ModelAdmin and inlines)."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", scoped(db_field.related_model._default_manager.all(), request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", scoped(db_field.related_model._default_manager.all(), request.user))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class OrganizationScopedAdmin(ScopedChoicesMixin, admin.ModelAdmin):
    """A ModelAdmin whose rows belong to an organization through `org_lookup`.

    `org_lookup` is the ORM path from the model to its Organization
    ("cohort__organization"; "" for Organization itself); a model that belongs
    to a user instead names that field in `user_lookup` ("user"). List filters on
    relations only offer related rows that occur in the (scoped) list.
    """

    org_lookup = "cohort__organization"
    user_lookup = None

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def _check_in_scope(self, request, object_id):
        # History pages (Django's and django-simple-history's) look the row up themselves.
        # Django's own change view turns a malformed id into "not found" (get_object); do the same.
        try:
            found = self.get_queryset(request).filter(pk=unquote(object_id)).exists()
        except (ValueError, ValidationError):
            found = False
        if not found:
            raise Http404("No such row among your organizations'.")

    def history_view(self, request, object_id, extra_context=None):
        self._check_in_scope(request, object_id)
        return super().history_view(request, object_id, extra_context=extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._check_in_scope(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context=extra_context)

    def get_list_filter(self, request):
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                if field.is_relation and not isinstance(field, models.ManyToManyField):
                    # Django's RelatedFieldListFilter lists every cohort of every organization.
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters


class ScopedInline(ScopedChoicesMixin, admin.TabularInline):
    """A tabular inline whose foreign-key choices are cut to the user's organizations."""
