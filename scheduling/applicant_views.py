"""The applicant's own page, `/i/<token>/`: no login, one application, phone first.

The token in the URL is the only credential (scheduling/applicant.py). Every answer
is rate-limited per token and per client IP before the token is even looked up, so
guessing is slow as well as hopeless (256 bits); an unknown, expired or revoked token
gets the same plain 404, which names only whom to contact. Pages carry
`Referrer-Policy: same-origin`, so the token never leaks to the booking tool (and
links out say rel="noreferrer" too); "no-referrer" would make browsers send
`Origin: null` with the form, which Django's CSRF check rightly refuses.
"""

import logging

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from applications.models import time_zone_or_utc

from . import handmade
from .applicant import booking_link_for, find_token, receives_webhooks, touch
from .models import Booking
from .schedule_forms import ApplicantBookedForm
from .status import CLOSED, SCHEDULED, WAITING, Status

logger = logging.getLogger(__name__)


def _token_key(group, request):
    return request.resolver_match.kwargs["token"]


def _rate_limited(request, *, posting=False):
    """Count this request against the IP's and the token's budgets; return True when over either."""
    limits = [("applicant-ip", "ip", settings.APPLICANT_RATE_PER_IP),
              ("applicant-token", _token_key, settings.APPLICANT_RATE_PER_TOKEN)]
    if posting:
        limits.append(("applicant-post", _token_key, settings.APPLICANT_POST_RATE_PER_TOKEN))
    try:
        # Every budget is counted (no short-circuit), so a blocked client keeps paying.
        return any([is_ratelimited(request, group=group, key=key, rate=rate, increment=True)
                    for group, key, rate in limits])
    except (RedisError, OSError):
        # A cache outage must not lock applicants out of their page; 256-bit tokens do not
        # need the limit to stay unguessable, it only keeps a scraper from hammering us.
        logger.warning("Rate-limit cache unavailable; applicant page served without a limit")
        return False


def _private(response):
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _gone(request, token=None):
    cohort = token.application.cohort if token is not None else None
    context = {"cohort": cohort, "contact": cohort.reply_to_email if cohort else ""}
    return _private(render(request, "scheduling/applicant_gone.html", context, status=404))


def _too_many(request):
    response = render(request, "scheduling/applicant_limited.html", status=429)
    response["Retry-After"] = "60"
    return _private(response)


def _token_or_none(key):
    token = find_token(key)
    return token if token is not None and token.is_usable() else None


def _page(request, token, *, form=None, message="", status=200):
    application = token.application
    cohort = application.cohort
    current = None
    if application.interview_booking_uid:
        current = application.bookings.filter(uid=application.interview_booking_uid).first()
    # The booking's own zone (the applicant's, as the booking tool saw it) is the server's
    # guess; static/applicant.js then shows the browser's zone.
    zone = time_zone_or_utc((current.time_zone if current else "") or cohort.organization.time_zone)
    claim = current if current is not None and current.kind == Booking.Kind.APPLICANT else None
    waiting = application.status in WAITING or application.status == Status.NEW
    offers_form = (waiting or claim is not None) and not receives_webhooks(application)
    if form is None and offers_form:
        initial = {"time_zone": zone.key}
        if claim is not None:
            local = claim.start.astimezone(zone)
            initial.update(date=local.date(), time=local.time(), meeting_url=claim.meeting_url)
        form = ApplicantBookedForm(initial=initial)
        if claim is None:
            # Nothing typed yet: static/applicant.js may put the browser's zone here.
            form.fields["time_zone"].widget.attrs["data-browser-zone"] = ""
    scheduled = current if application.status in SCHEDULED else None
    asked = None
    if application.reschedule_requested:
        asked = (application.bookings.filter(state=Booking.State.CANCELLED, request_reschedule=True)
                 .order_by("-updated_at", "-pk").first())
    minutes = None
    if scheduled is not None and scheduled.start and scheduled.end:
        minutes = int((scheduled.end - scheduled.start).total_seconds() // 60)
    context = {
        "token": token,
        "application": application,
        "cohort": cohort,
        "organization": cohort.organization,
        "first_name": application.applicant_name.split()[0] if application.applicant_name.split() else "",
        "round": application.round,
        "current": scheduled,
        "minutes": minutes,
        "asked": asked,
        "closed": application.status in CLOSED,
        "waiting": waiting,
        "booking_link": booking_link_for(application) if waiting else "",
        "form": form if offers_form and application.status not in CLOSED else None,
        "message": message,
        "booked": request.GET.get("booked") == "1",
        "zone": zone,
    }
    with timezone.override(zone):
        response = render(request, "scheduling/applicant_page.html", context, status=status)
    return _private(response)


@never_cache
@require_safe  # HEAD too: mail scanners check links before the applicant clicks
def applicant_page(request, token):
    """Show the applicant their cohort, round, interview and what they can do next.

    404 (plain page) for an unknown, expired or revoked token; 429 over the rate limits.
    """
    if _rate_limited(request):
        return _too_many(request)
    found = find_token(token)
    if found is None or not found.is_usable():
        return _gone(request, found)
    touch(found)
    return _page(request, found)


@never_cache
@require_POST
def applicant_booked(request, token):
    """Record "I've booked my interview" (date, time, zone, optional link) and show the page.

    A valid form schedules through handmade.record_applicant_booking and redirects
    (303) to the page with a thank-you; invalid input renders the page with the
    errors (422); a submission that may change nothing (closed application, another
    interview already scheduled) renders the page with a polite sentence (409).
    """
    if _rate_limited(request, posting=True):
        return _too_many(request)
    found = find_token(token)
    if found is None or not found.is_usable():
        return _gone(request, found)
    if receives_webhooks(found.application):
        return _page(request, found, status=409, message=(
            "Your booking reaches us by itself from the booking page, so there is nothing to "
            "confirm here."))
    form = ApplicantBookedForm(request.POST)
    if not form.is_valid():
        return _page(request, found, form=form, status=422)
    done = handmade.record_applicant_booking(
        found.application, start=form.cleaned_data["start"], time_zone=form.cleaned_data["time_zone"],
        meeting_url=form.cleaned_data["meeting_url"],
    )
    found.application.refresh_from_db()
    if not done.changed:
        return _page(request, found, message=done.message, status=409 if done.booking is None else 200)
    url = reverse("scheduling:applicant_page", args=[found.key]) + "?booked=1"
    return _private(HttpResponseRedirect(url, status=303))
