"""Interviews recorded by hand: an admin's "Schedule offline" and an applicant's "I've booked".

Both take the path a provider's webhook takes: a BookingEvent is merged into a Booking
row (`merge_booking_event`) and the application's schedule and status are derived from
its bookings (`sync_application`). So status, stage and history move exactly as for a
Cal.com booking, and a later provider booking, cancel or reschedule for the same
application behaves as it would after one. The rows differ only in `Booking.kind`
("offline", "applicant") and their uids, which are ours ("offline-…", "applicant-…").
Every call writes a ScheduleChange line, whether or not the status moves.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import IntegrityError, transaction
from django.utils import timezone

from applications.models import Application, time_zone_or_utc

from . import events
from .bookings import merge_booking_event, sync_application
from .models import Booking, ScheduleChange
from .status import ON_BOOKING, SCHEDULED

# Statuses in which an interview may be put on the schedule: those a booking moves to
# "scheduled", and "scheduled" itself (the new interview replaces the current one).
SCHEDULABLE = frozenset(ON_BOOKING) | SCHEDULED


class NotAllowed(Exception):
    """The application cannot take this change now; the message is a sentence for people."""


@dataclass
class Done:
    """What a call did: `changed` (False for a polite no-op), a sentence, and the booking."""

    changed: bool
    message: str
    booking: Booking | None = None


def describe(start, time_zone, *, end=None):
    """Return "Tue 9 Jun 2026, 14:00 Europe/Paris" (+ " – 14:45") for an aware `start` in `time_zone`."""
    zone = time_zone_or_utc(time_zone)
    local = start.astimezone(zone)
    text = f"{local:%a} {local.day} {local:%b %Y, %H:%M} {zone.key}"
    if end is not None:
        text += f" – {end.astimezone(zone):%H:%M}"
    return text


def _locked(application):
    return Application.objects.select_for_update().select_related("cohort").get(pk=application.pk)


def _current(application):
    """Return the application's current Booking (None when nothing is scheduled)."""
    if not application.interview_booking_uid:
        return None
    return application.bookings.filter(uid=application.interview_booking_uid).first()


def _event(trigger, booking, application, *, start, end, time_zone, meeting_url, title, reason="",
           location=""):
    return events.BookingEvent(
        provider=booking.kind, reason=reason[:2000], location=location[:300],
        trigger=trigger, uid=booking.uid, ical_sequence=booking.last_sequence + 1,
        start=start, end=end, email=application.contact_email, name=application.applicant_name,
        time_zone=time_zone, meeting_url=meeting_url, event_type=title, title=title,
        booking_status="CANCELLED" if trigger == events.BOOKING_CANCELLED else "ACCEPTED",
    )


def _new_booking(application, kind, **fields):
    return Booking.objects.create(
        cohort_id=application.cohort_id, application=application, kind=kind,
        uid=f"{kind}-{secrets.token_hex(10)}", **fields,
    )


def _apply(application, booking, trigger, *, user, note, start=None, end=None, time_zone="",
           meeting_url="", title="", reason="", location=""):
    """Merge one of our own events into `booking`, then re-derive the schedule; return the summary."""
    event = _event(trigger, booking, application, start=start, end=end, time_zone=time_zone,
                   meeting_url=meeting_url, title=title, reason=reason, location=location)
    merged, _created, _changed = merge_booking_event(application.cohort, event, application, at=timezone.now())
    return sync_application(
        application, touched=merged, opens=trigger != events.BOOKING_CANCELLED, user=user, note=note,
    )


# --- admins: schedule offline, edit, clear, confirm ----------------------------------------


def schedule_offline(application, *, start, end, time_zone, meeting_url="", location="", note="",
                     user):
    """Record an interview arranged outside any scheduling tool, as a BOOKING_CREATED would.

    `start`, `end`: aware datetimes; `time_zone`: the IANA name it was agreed in;
    `meeting_url` (http/https) or `location` (free text); `note` for the team; `user`
    the admin (the cause on the history). The new interview becomes the current one:
    `new`/`waiting_*` move to `*_scheduled`, a scheduled application keeps its status.
    Returns Done. Raises NotAllowed when the status takes no interview (decision due,
    accepted, waitlist, declined).
    """
    with transaction.atomic():
        application = _locked(application)
        if application.status not in SCHEDULABLE:
            raise NotAllowed(
                f"“{application.status_label}” takes no interview: only an application waiting "
                "for a round, or with one scheduled, can be scheduled."
            )
        booking = _new_booking(application, Booking.Kind.OFFLINE, location=location[:300],
                               note=note, created_by=user)
        when = describe(start, time_zone, end=end)
        summary = _apply(application, booking, events.BOOKING_CREATED, user=user,
                         note=f"Scheduled offline: {when}", start=start, end=end,
                         time_zone=time_zone, meeting_url=meeting_url, title="Offline interview",
                         location=location)
        ScheduleChange.objects.create(
            application=application, booking=booking, user=user,
            action=ScheduleChange.Action.OFFLINE_SCHEDULED,
            detail=_detail(when, meeting_url, location, note),
        )
    return Done(True, f"Scheduled offline for {when}. {summary}", booking)


def edit_interview(application, *, start, end, time_zone, meeting_url="", location="", note="",
                   user):
    """Move the current offline or applicant-reported interview (the effect of a reschedule).

    Arguments as for `schedule_offline`. The booking keeps its uid; its time, link,
    place and note change; an applicant's booking edited by an admin counts as
    confirmed. The status does not move. Returns Done; raises NotAllowed when the
    current interview came from a provider (change it there) or there is none.
    """
    with transaction.atomic():
        application = _locked(application)
        booking = _current_by_hand(application)
        when = describe(start, time_zone, end=end)
        # Set what the edit may empty first: merging keeps a link or place the event leaves blank.
        Booking.objects.filter(pk=booking.pk).update(
            location=location[:300], note=note, meeting_url=meeting_url,
            verified_at=booking.verified_at or timezone.now(), verified_by=booking.verified_by or user,
        )
        summary = _apply(application, booking, events.BOOKING_RESCHEDULED, user=user,
                         note=f"Interview moved to {when}", start=start, end=end,
                         time_zone=time_zone, meeting_url=meeting_url, title=booking.event_type,
                         location=location)
        ScheduleChange.objects.create(
            application=application, booking=booking, user=user,
            action=ScheduleChange.Action.OFFLINE_EDITED,
            detail=f"Moved from {describe(booking.start, booking.time_zone)} to "
                   + _detail(when, meeting_url, location, note),
        )
    return Done(True, f"Interview moved to {when}. {summary}", booking)


def clear_interview(application, *, user, reason=""):
    """Cancel the current offline or applicant-reported interview (the effect of a cancel).

    `*_scheduled` returns to `waiting_*`, with `user` as the cause. Returns Done;
    raises NotAllowed when the current interview came from a provider or there is none.
    """
    with transaction.atomic():
        application = _locked(application)
        booking = _current_by_hand(application)
        when = describe(booking.start, booking.time_zone)
        summary = _apply(application, booking, events.BOOKING_CANCELLED, user=user,
                         note=f"Cleared the interview of {when}", start=booking.start,
                         end=booking.end, time_zone=booking.time_zone,
                         meeting_url=booking.meeting_url, title=booking.event_type, reason=reason)
        ScheduleChange.objects.create(
            application=application, booking=booking, user=user,
            action=ScheduleChange.Action.OFFLINE_CLEARED,
            detail=f"Cleared the interview of {when}" + (f": {reason}" if reason else "."),
        )
    return Done(True, f"Cleared the interview of {when}. {summary}", booking)


def confirm_applicant_booking(application, *, user):
    """Mark the applicant's reported interview as confirmed by `user` (an admin).

    The schedule and status stay; the Pipeline stops saying "unverified". Returns
    Done (changed False when it was confirmed already); raises NotAllowed when the
    current interview is not one the applicant reported.
    """
    with transaction.atomic():
        application = _locked(application)
        booking = _current(application)
        if booking is None or booking.kind != Booking.Kind.APPLICANT:
            raise NotAllowed("There is no interview reported by the applicant to confirm.")
        if booking.verified_at is not None:
            return Done(False, "This interview was confirmed already.", booking)
        booking.verified_at, booking.verified_by = timezone.now(), user
        Booking.objects.filter(pk=booking.pk).update(verified_at=booking.verified_at, verified_by=user)
        sync_application(application, touched=booking, opens=False, user=user)
        when = describe(booking.start, booking.time_zone)
        ScheduleChange.objects.create(
            application=application, booking=booking, user=user,
            action=ScheduleChange.Action.APPLICANT_CONFIRMED,
            detail=f"Confirmed the interview of {when} the applicant reported.",
        )
    return Done(True, f"Confirmed the interview of {when}.", booking)


def _current_by_hand(application):
    booking = _current(application)
    if booking is None:
        raise NotAllowed("Nothing is scheduled, so there is nothing to change.")
    if not booking.by_hand:
        raise NotAllowed(
            f"The current interview came from {booking.get_kind_display()}: change or cancel it "
            "there, and the change arrives here by itself."
        )
    return booking


def _detail(when, meeting_url, location, note):
    parts = [when]
    if meeting_url:
        parts.append(meeting_url)
    if location:
        parts.append(location)
    text = ", ".join(parts)
    return (text + (f" · {note}" if note else ""))[:500]


# --- the applicant: "I've booked my interview" ------------------------------------------


def record_applicant_booking(application, *, start, time_zone, meeting_url=""):
    """Schedule the interview the applicant says they booked, as a webhook booking would.

    `start`: aware datetime; `time_zone`: the applicant's IANA zone; `meeting_url`
    optional. Moves `new`/`waiting_*` to `*_scheduled` (cause "confirmed by the
    applicant") with the booking marked unverified. A second submission updates the
    same booking, never adds one (a partial unique constraint settles races).
    Returns Done with changed False and a polite sentence when nothing may change:
    the application is closed or past its interview, another interview is scheduled
    already, or the time is the one we have.
    """
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _record_claim(application, start=start, time_zone=time_zone,
                                     meeting_url=meeting_url)
        except IntegrityError:
            if attempt:
                raise
            # A concurrent submission created the claim first: this one updates it.


def _record_claim(application, *, start, time_zone, meeting_url):
    application = _locked(application)
    current = _current(application)
    claim = current if current is not None and current.kind == Booking.Kind.APPLICANT else None
    if application.status not in SCHEDULABLE:
        return Done(False, "There is nothing to schedule on this application right now, so "
                    "nothing was changed. The team will contact you by email.")
    if claim is None and application.status in SCHEDULED:
        return Done(False, "Your interview is already on our schedule, so nothing was changed. "
                    "To change it, use the links under “Your interview”.", current)
    when = describe(start, time_zone)
    if claim is not None and claim.start == start and claim.meeting_url == meeting_url:
        return Done(False, f"We already have your interview on {when}. Nothing else to do.", claim)
    note = "Confirmed by the applicant"
    if claim is None:
        claim = _new_booking(application, Booking.Kind.APPLICANT)
        trigger, action = events.BOOKING_CREATED, ScheduleChange.Action.APPLICANT_BOOKED
        detail = f"The applicant says they booked {when}"
    else:
        # The applicant's new word is unverified again, whatever an admin confirmed before.
        Booking.objects.filter(pk=claim.pk).update(verified_at=None, verified_by=None,
                                                    meeting_url=meeting_url)
        trigger, action = events.BOOKING_RESCHEDULED, ScheduleChange.Action.APPLICANT_UPDATED
        detail = f"The applicant moved their interview from {describe(claim.start, claim.time_zone)} to {when}"
    _apply(application, claim, trigger, user=None, note=note, start=start, end=None,
           time_zone=time_zone, meeting_url=meeting_url, title="Interview booked by the applicant")
    ScheduleChange.objects.create(
        application=application, booking=claim, by_applicant=True, action=action,
        detail=(detail + (f", {meeting_url}" if meeting_url else "") + ".")[:500],
    )
    return Done(True, f"Thank you: your interview on {when} is on our schedule. The team will "
                "confirm it.", claim)


def as_aware(day, clock, time_zone):
    """Return the aware UTC datetime for local `day` (date) and `clock` (time) in `time_zone`.

    Raises ValueError with a sentence when the local time does not exist there
    (the hour skipped when clocks go forward).
    """
    zone = time_zone_or_utc(time_zone)
    local = datetime.combine(day, clock).replace(tzinfo=zone)
    utc = local.astimezone(dt_timezone.utc)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError(f"{clock:%H:%M} does not exist on {day:%d %b %Y} in {zone.key} "
                         "(the clocks go forward then). Please pick another time.")
    return utc
