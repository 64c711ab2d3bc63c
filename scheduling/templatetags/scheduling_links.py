"""Template tags for pages of other apps: an application's booking link and invitation panel.

They let the applications app's templates show scheduling's data without its
views importing scheduling (STYLE.md, import direction).
"""

from django import template

from applications.models import Membership

from .. import invitations, links
from ..models import InterviewRound
from ..rounds import round_waited_for

register = template.Library()


def _rounds(cohort):
    """Return {number: InterviewRound} of `cohort`, memoised on the instance (one query per page)."""
    cached = getattr(cohort, "_interview_rounds", None)
    if cached is None:
        cached = {r.number: r for r in InterviewRound.objects.filter(cohort=cohort)}
        cohort._interview_rounds = cached
    return cached


@register.simple_tag
def booking_link(application):
    """Return `application`'s bound booking link for the round it waits for, or "" (none set up)."""
    number = round_waited_for(application.status)
    interview_round = _rounds(application.cohort).get(number) if number else None
    return links.booking_link(application, interview_round) if interview_round else ""


def invitation_panel_context(application, user):
    """Return the context of scheduling/_invitation_panel.html for `application` seen by `user`."""
    number = round_waited_for(application.status)
    interview_round = _rounds(application.cohort).get(number) if number else None
    is_admin = Membership.objects.filter(
        user=user, organization=application.cohort.organization_id, role=Membership.Role.ADMIN).exists()
    return {
        "application": application,
        "waiting_round": number if application.status in invitations.WAITING else None,
        "interview_round": interview_round,
        "link": links.booking_link(application, interview_round) if interview_round else "",
        "state": invitations.invitation_status(application),
        "history": list(application.invitations.select_related("sent_by")[:20]),
        "can_send": is_admin,
    }


@register.inclusion_tag("scheduling/_invitation_panel.html", takes_context=True)
def invitation_panel(context, application):
    """Render the application page's "Booking link and invitations" card."""
    request = context.get("request")
    return {**invitation_panel_context(application, request.user), "cohort": application.cohort,
            "csrf_token": context.get("csrf_token"), "request": request}
