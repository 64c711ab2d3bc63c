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
    """Return {number: InterviewRound} of `cohort`, memoised on the instance (one query per page).

    applications.pipeline.add_invitations fills the same memo for the tab's rows.
    """
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


def invitation_panel_context(application, user, can_send=None):
    """Return the context of scheduling/_invitation_panel.html for `application` seen by `user`.

    `can_send` (bool) is whether `user` may send (an org admin); asked of the
    database when None. Two queries at most: the cohort's rounds (memoised) and the
    application's last 20 invitations, from which its Pipeline state is read too.
    """
    number = round_waited_for(application.status) if application.status in invitations.WAITING else None
    interview_round = _rounds(application.cohort).get(number) if number else None
    history = list(application.invitations.select_related("sent_by")[:20])
    if can_send is None:
        can_send = Membership.objects.is_org_admin(user, application.cohort.organization)
    return {
        "application": application,
        "waiting_round": number,
        "interview_round": interview_round,
        "link": links.booking_link(application, interview_round) if interview_round else "",
        "state": invitations.state_of(application, history) if interview_round else None,
        "history": history,
        "can_send": can_send,
    }


@register.inclusion_tag("scheduling/_invitation_panel.html", takes_context=True)
def invitation_panel(context, application):
    """Render the application page's "Booking link and invitations" card (uses the page's `can_edit`)."""
    request = context.get("request")
    return {**invitation_panel_context(application, request.user, can_send=context.get("can_edit")),
            "cohort": application.cohort, "csrf_token": context.get("csrf_token"), "request": request}
