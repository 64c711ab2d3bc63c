"""The cohort's interview calendar (week and agenda) and its ICS feed; HTTP only, see calendar.py."""

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from applications.models import Cohort, Membership, UserSettings

from . import calendar

TEMPLATE = "scheduling/interview_calendar.html"
AGENDA_WEEKS = 4


def _cohort_or_404(request, slug):
    cohorts = Cohort.objects.for_user(request.user).select_related("organization")
    return get_object_or_404(cohorts, slug=slug)


def _monday(text, today):
    """Return the Monday of the week holding the ISO date `text` (today's week when unreadable)."""
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        day = today
    return calendar.week_start(day)


@login_required
@require_GET
def interview_calendar(request, slug):
    """Show the cohort's interviews: `?view=week` (default) or `agenda`, from `?week=YYYY-MM-DD`.

    `?round=1|2` keeps one round. Times in the viewer's zone; a dot per state
    with its name beside it. Org admins also see the feed's secret URL.
    """
    cohort = _cohort_or_404(request, slug)
    tz = UserSettings.time_zone_for(request.user, cohort.organization)
    today = timezone.localtime(timezone.now(), tz).date()
    view = "agenda" if request.GET.get("view") == "agenda" else "week"
    monday = _monday(request.GET.get("week"), today)
    round_number = request.GET.get("round") if request.GET.get("round") in ("1", "2") else ""
    weeks = AGENDA_WEEKS if view == "agenda" else 1
    days = [monday + timedelta(days=n) for n in range(7 * weeks)]
    items = calendar.interviews(
        cohort, start=calendar.local_midnight(days[0], tz),
        end=calendar.local_midnight(days[-1] + timedelta(days=1), tz),
        round_number=int(round_number) if round_number else None,
    )
    grouped = calendar.by_day(items, days, tz)
    if view == "agenda":
        grouped = [(day, rows) for day, rows in grouped if rows]
    is_admin = Membership.objects.is_org_admin(request.user, cohort.organization)
    feed_url = ""
    if is_admin:
        feed_url = request.build_absolute_uri(
            reverse("scheduling:interview_feed", args=[cohort.slug, cohort.calendar_token]))
    step = timedelta(days=7 * weeks)
    context = {
        "cohort": cohort, "view": view, "days": grouped, "today": today, "monday": monday,
        "previous": monday - step, "next": monday + step, "this_week": calendar.week_start(today),
        "last_day": days[-1], "round": round_number, "states": calendar.STATES.items(),
        "count": len(items), "feed_url": feed_url, "is_admin": is_admin,
    }
    with timezone.override(tz):
        return render(request, TEMPLATE, context)


@require_GET
def interview_feed(request, slug, token):
    """Answer the cohort's ICS feed (text/calendar) to the holder of its secret token; else 404.

    No login: calendar apps cannot log in, so the token is the credential. A
    rotated token answers 404 like any wrong one.
    """
    cohort = Cohort.objects.filter(slug=slug, calendar_token=token).first()
    if cohort is None or not token:
        raise Http404("No such calendar feed.")
    response = HttpResponse(calendar.feed(cohort), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{cohort.slug}-interviews.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_POST
def interview_feed_rotate(request, slug):
    """Give the feed a new secret URL (org admins only); subscribers of the old one get 404."""
    cohort = _cohort_or_404(request, slug)
    if not Membership.objects.is_org_admin(request.user, cohort.organization):
        raise PermissionDenied("Only an org admin can change the calendar feed's address.")
    cohort.rotate_calendar_token()
    messages.success(request, "The calendar feed has a new address: the old one no longer works. "
                              "Subscribe again with the new one.")
    return HttpResponseRedirect(reverse("scheduling:interviews", args=[cohort.slug]) + "#feed")
