"""Who may change what: organization admins change, members (reviewers) read.

The one place the role rule lives. Every view that changes state decorates itself
with `org_admin_required` (its URL names a cohort by `slug`), or calls
`check_org_admin` when it reaches the organization another way. A member gets 403
with a sentence saying why and whom to ask (templates/403.html shows it); someone
outside the organization gets 404, as on every read-only page, so a stranger does
not learn that the cohort exists.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404

from .models import Cohort, Membership


def role_in(user, organization):
    """Return `user`'s Membership.Role value in `organization`, or None when not a member."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, organization=organization)
        .values_list("role", flat=True).first()
    )


def refusal(organization_name, action="make changes here"):
    """Return the sentence a member reads when refused: what only admins may do, and whom to ask."""
    return (
        f"Only admins of {organization_name} can {action}. You are a reviewer there, "
        "so you can read everything but change nothing: ask one of its admins to do it, "
        "or to make you an admin."
    )


def check_org_admin(user, organization, action="make changes here"):
    """Raise PermissionDenied (a sentence) unless `user` is an admin of `organization`; Http404 for outsiders."""
    role = role_in(user, organization)
    if role is None:
        raise Http404("No such organization.")
    if role != Membership.Role.ADMIN:
        raise PermissionDenied(refusal(organization.name, action))


def cohorts_with_role(user):
    """Return the cohorts `user` can see, each annotated `viewer_role` (their role in its organization)."""
    # The annotation reuses for_user's join on the user's own membership row.
    return Cohort.objects.for_user(user).annotate(viewer_role=F("organization__memberships__role"))


def org_admin_required(view=None, *, action="make changes here"):
    """Decorate a view whose URL names a cohort by `slug`: only admins of its organization get through.

    Use bare (`@org_admin_required`) or with what the view does, for the refusal's
    sentence (`@org_admin_required(action="change statuses")`). Put it under
    `login_required` (anonymous users are sent to log in first). Raises Http404
    when the user is not a member of the cohort's organization (or there is no
    such cohort) and PermissionDenied (403, a sentence) when they are a member
    but not an admin.
    """
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            cohort = (
                cohorts_with_role(request.user).select_related("organization")
                .filter(slug=kwargs.get("slug")).first()
            )
            if cohort is None:
                raise Http404("No such cohort.")
            if cohort.viewer_role != Membership.Role.ADMIN:
                raise PermissionDenied(refusal(cohort.organization.name, action))
            return view(request, *args, **kwargs)

        wrapper.org_admin_required = True  # tests find every guarded view by this mark
        return wrapper

    return decorate(view) if view is not None else decorate
