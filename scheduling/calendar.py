"""A cohort's interviews as a calendar: the week and agenda pages, and the ICS feed.

One interview per booking chain: a booking a reschedule replaced is not shown, its
successor is (the feed keeps the chain's UID, so calendar apps move the event).
Pure reading: nothing here changes a booking.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from .bookings import NOT_SUPERSEDING
from .models import Booking

# What a calendar shows of each state, in the legend's order.
STATES = {
    "scheduled": "Scheduled",
    "pending": "Pending confirmation",
    "held": "Held",
    "cancelled": "Cancelled",
    "no_show": "No-show",
}
# The feed's window (issue 13): a month back, half a year ahead.
FEED_PAST = timedelta(days=30)
FEED_FUTURE = timedelta(days=180)


@dataclass
class Interview:
    """One interview on the calendar: its booking, its application, and the state it shows."""

    booking: Booking
    state: str

    @property
    def application(self):
        return self.booking.application

    @property
    def state_label(self):
        return STATES[self.state]


def state_of(booking, now):
    """Return the calendar state of `booking` at `now`: a key of STATES."""
    if getattr(booking, "no_show", None) is True:
        return "no_show"
    if booking.state in (Booking.State.CANCELLED, Booking.State.REJECTED):
        return "cancelled"
    if booking.state == Booking.State.PENDING:
        return "pending"
    if booking.ended_at or (booking.end or booking.start or now) < now:
        return "held"
    return "scheduled"


def current_bookings(cohort):
    """Return `cohort`'s matched bookings that no reschedule replaced (a queryset)."""
    # Per seat: one seat's reschedule replaces that seat only (seats share the slot's uid).
    replaced = Booking.objects.filter(cohort=cohort, reschedule_uid=OuterRef("uid"),
                                      attendee_key=OuterRef("attendee_key")).exclude(
        state__in=list(NOT_SUPERSEDING))
    return (Booking.objects.filter(cohort=cohort, application__isnull=False, start__isnull=False)
            .exclude(Exists(replaced)).select_related("application"))


def interviews(cohort, *, start, end, round_number=None, now=None):
    """Return [Interview] of `cohort` starting in [start, end) (aware datetimes), by start time.

    `round_number` (1 or 2) keeps the bookings of that round's event types only.
    """
    now = now or timezone.now()
    rows = current_bookings(cohort).filter(start__gte=start, start__lt=end)
    if round_number:
        rows = rows.filter(round=round_number)
    return [Interview(b, state_of(b, now)) for b in rows.order_by("start", "pk")]


def week_start(day):
    """Return the Monday (a date) of the week holding date `day`."""
    return day - timedelta(days=day.weekday())


def local_midnight(day, tz):
    """Return the aware datetime of midnight at the start of date `day` in `tz`."""
    return datetime.combine(day, time(0), tzinfo=tz)


def by_day(items, days, tz):
    """Return [(date, [Interview])] for each date of `days`, interviews grouped by their local date."""
    grouped = {day: [] for day in days}
    for item in items:
        grouped.setdefault(timezone.localtime(item.booking.start, tz).date(), []).append(item)
    return [(day, grouped.get(day, [])) for day in days]


# --- the ICS feed --------------------------------------------------------------------------


def _chain_roots(cohort):
    """Return {uid: root uid} for the cohort's bookings, following rescheduleUid back to the first."""
    back = dict(Booking.objects.filter(cohort=cohort).exclude(reschedule_uid="").values_list(
        "uid", "reschedule_uid"))
    roots = {}
    for uid in back:
        seen, current = {uid}, uid
        while current in back and back[current] not in seen:
            current = back[current]
            seen.add(current)
        roots[uid] = (current, len(seen) - 1)
    return roots


def feed(cohort, *, now=None):
    """Return the cohort's interviews as an iCalendar document (bytes), for calendar apps.

    One VEVENT per current booking starting from FEED_PAST before `now` to
    FEED_FUTURE after it. UID is the chain's iCalUID (stable across Cal.com
    reschedules, PROTOCOL.md §3), else the chain's first booking uid + "@cohortos";
    SEQUENCE is Cal.com's iCalSequence, else the number of reschedules before it
    (+1 once cancelled), so it only grows; cancelled and rejected bookings are
    STATUS:CANCELLED, pending ones TENTATIVE. The meeting link is URL, LOCATION
    and in DESCRIPTION with the application's page; ORGANIZER when the provider
    told us who hosts it.
    """
    now = now or timezone.now()
    calendar = Calendar()
    calendar.add("prodid", "-//Cohort-OS//Interviews//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Interviews · {cohort.name}")
    roots = _chain_roots(cohort)
    rows = current_bookings(cohort).filter(start__gte=now - FEED_PAST, start__lt=now + FEED_FUTURE)
    for booking in rows.order_by("start", "pk"):
        calendar.add_component(_event(cohort, booking, roots, now))
    return calendar.to_ical()


def _event(cohort, booking, roots, now):
    application = booking.application
    root, depth = roots.get(booking.uid, (booking.uid, 0))
    cancelled = booking.state in (Booking.State.CANCELLED, Booking.State.REJECTED)
    sequence = booking.last_sequence if booking.last_sequence >= 0 else depth + (1 if cancelled else 0)
    event = Event()
    event.add("uid", booking.ical_uid or f"{root}@cohortos")
    event.add("sequence", sequence)
    event.add("dtstamp", booking.updated_at or now)
    event.add("last-modified", booking.updated_at or now)
    event.add("dtstart", booking.start)
    event.add("dtend", booking.end or booking.start + timedelta(minutes=30))
    round_label = f" (round {booking.round})" if getattr(booking, "round", None) else ""
    event.add("summary", f"Interview: {application.applicant_name}{round_label}")
    event.add("status", "CANCELLED" if cancelled else "TENTATIVE" if booking.state == Booking.State.PENDING
              else "CONFIRMED")
    page = settings.SITE_URL + reverse("applications:detail", args=[cohort.slug, application.pk])
    lines = [f"{application.applicant_name} <{application.contact_email}>", f"Application: {page}"]
    if booking.meeting_url:
        event.add("url", booking.meeting_url)
        event.add("location", booking.meeting_url)
        lines.insert(1, f"Meeting link: {booking.meeting_url}")
    if cancelled and booking.reason:
        lines.append(f"Cancelled: {booking.reason}")
    event.add("description", "\n".join(lines))
    organizer = getattr(booking, "organizer_email", "")
    if organizer:
        address = vCalAddress(f"mailto:{organizer}")
        name = getattr(booking, "organizer_name", "")
        if name:
            address.params["cn"] = vText(name)
        event.add("organizer", address)
    return event
