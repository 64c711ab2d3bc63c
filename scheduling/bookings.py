"""Merge an event into its Booking row, and derive an application's schedule from its bookings."""

import copy
from collections import defaultdict

from django.utils import timezone

from applications.models import Application, bump_cohort_version

from . import events
from .models import Booking, ScheduleChange
from .rows import insert_unless_conflict
from .status import SCHEDULED, status_after_booking, status_after_cancel

STATE_FOR_TRIGGER = {
    events.BOOKING_CREATED: Booking.State.ACCEPTED,
    events.BOOKING_RESCHEDULED: Booking.State.ACCEPTED,
    events.BOOKING_REQUESTED: Booking.State.PENDING,
    events.BOOKING_CANCELLED: Booking.State.CANCELLED,
    events.BOOKING_REJECTED: Booking.State.REJECTED,
}
# A successor in one of these states has not replaced its predecessor (yet).
NOT_SUPERSEDING = frozenset({Booking.State.PENDING, Booking.State.REJECTED})


class BookingClaimed(Exception):
    """The booking is stored already and belongs to another application than the one matched."""


def booking_key(event):
    """Return the key of the Booking row `event` merges into: (uid, attendee_key), cut to the columns."""
    return event.uid[:64], event.attendee_key[:254]


def merge_booking_event(cohort, event, application, *, at, round=None, take=True):
    """Fold `event` into the Booking row for its (uid, attendee_key) (created if new).

    Returns (Booking, created, changed): `changed` is False when the event changed
    no column of a stored row (a late copy, what a sync already knew), True otherwise.

    Links (`iCalUID`, `rescheduleUid`, a cancel's `rescheduled_to_uid`) are always
    kept. State and schedule follow the event only when it is newer, by (`at`,
    iCalSequence), than the newest one already applied: an old event arriving late
    never overwrites newer state. MEETING_ENDED only records when the interview
    ended. `at` is an aware UTC datetime, the event's createdAt; `round` the
    interview round (1 or 2) of the event's type, when known. A new booking is inserted with `application` (an
    Application or None) and the event already merged, in one statement; a stored
    one is locked (select_for_update), merged, saved only when a column changed,
    and keeps its application. When it belongs to another application and `take` is False,
    raises BookingClaimed before anything is written.
    """
    uid, attendee_key = booking_key(event)
    key = {"cohort": cohort, "uid": uid, "attendee_key": attendee_key}
    booking = Booking(**key, application=application, kind=event.provider, round=round)
    _fold(booking, event, at=at, created=True)
    if insert_unless_conflict(booking) is not None:
        return booking, True, True
    booking = Booking.objects.select_for_update().get(**key)
    owner = application.pk if application is not None else None
    if not take and booking.application_id not in (None, owner):
        raise BookingClaimed
    changed = _merge_stored(booking, event, at=at, round=round)
    if changed:
        # An event that changes nothing (a late copy, a sync of what we know) writes nothing:
        # no UPDATE and no history row for it.
        booking.save()
    return booking, False, changed


def unchanged_by(booking, event, *, at, round=None):
    """Return True when merging `event` into stored `booking` would change none of its columns.

    The same merge as merge_booking_event (`at`, `round` as there), tried on a copy:
    what the row already says is what the event says. Reads and writes nothing.
    """
    return not _merge_stored(copy.copy(booking), event, at=at, round=round)


def _merge_stored(booking, event, *, at, round):
    """Merge `event` into stored `booking` in memory; return True when a column (but updated_at) changed."""
    before = _columns(booking)
    _fold(booking, event, at=at, created=False)
    if round is not None:
        booking.round = round
    return _columns(booking) != before


def _columns(booking):
    """Return the booking's column values but `updated_at` (which every merge sets): a tuple."""
    return tuple(getattr(booking, f.attname) for f in Booking._meta.concrete_fields if f.attname != "updated_at")


def _fold(booking, event, *, at, created):
    """Merge `event` into `booking` in memory (`created`: the row is new)."""
    if event.ical_uid:
        booking.ical_uid = event.ical_uid[:200]
    if event.reschedule_uid and event.reschedule_uid != event.uid:
        booking.reschedule_uid = event.reschedule_uid[:64]
    if event.rescheduled_to_uid and event.rescheduled_to_uid != event.uid:
        booking.rescheduled_to_uid = event.rescheduled_to_uid[:64]

    sequence = -1 if event.ical_sequence is None else event.ical_sequence
    if booking.last_event_at is None:
        newer = True
    elif event.created_at is None and sequence >= 0 and booking.last_sequence >= 0:
        # No createdAt to order by (only our arrival time): Cal.com's sequence is the better clock.
        newer = sequence > booking.last_sequence
    else:
        newer = (at, sequence) > (booking.last_event_at, booking.last_sequence)
    if event.trigger == events.MEETING_ENDED:
        booking.ended_at = booking.ended_at or event.end
        if booking.start is None:
            _copy_schedule(booking, event)
        if created and event.booking_status == "ACCEPTED":
            # A meeting we hear of only as it ends (we missed its booking) still took place;
            # without a state it would count as a reschedule that cancelled its predecessor.
            booking.state = Booking.State.ACCEPTED
    elif newer:
        booking.state = STATE_FOR_TRIGGER[event.trigger]
        cancelled = event.trigger == events.BOOKING_CANCELLED
        booking.request_reschedule = cancelled and event.request_reschedule
        ended = event.trigger in (events.BOOKING_CANCELLED, events.BOOKING_REJECTED)
        booking.reason = event.reason if ended else ""
        booking.cancelled_by = event.cancelled_by if ended else ""
        booking.last_event_at, booking.last_sequence = at, sequence
        _copy_schedule(booking, event)
    elif booking.start is None:
        _copy_schedule(booking, event)  # a stale event still tells us when the booking was
    # Who moved it to this uid is a fact of its creation: any copy may bring it.
    booking.rescheduled_by = event.rescheduled_by or booking.rescheduled_by
    booking.reschedule_reason = event.reschedule_reason or booking.reschedule_reason
    booking.updated_at = timezone.now()


def _copy_schedule(booking, event):
    booking.start, booking.end = event.start or booking.start, event.end or booking.end
    # Cancel and reject bodies carry no metadata (§4): keep the link we had.
    booking.meeting_url = event.meeting_url or booking.meeting_url
    booking.location = event.location or booking.location
    booking.email = event.email or booking.email
    booking.name = event.name or booking.name
    booking.phone = event.phone or booking.phone
    booking.time_zone = event.time_zone or booking.time_zone
    booking.event_type = (event.title or event.event_type or booking.event_type)[:200]
    booking.reschedule_url = event.reschedule_url[:500] or booking.reschedule_url
    booking.cancel_url = event.cancel_url[:500] or booking.cancel_url
    if event.responses:
        booking.responses = [list(pair) for pair in event.responses]
    if booking.details_at is None:
        # Place and interviewer changes have their own clock (details_at); until one
        # arrives, the booking's own events say who and where.
        _copy_host(booking, event)


def _copy_host(booking, event):
    organizer = event.organizer
    if organizer.name or organizer.email:
        booking.organizer_name = organizer.name
        booking.organizer_email = organizer.email
        booking.organizer_time_zone = organizer.time_zone
    booking.team = event.team or booking.team
    booking.scheduling_type = event.scheduling_type or booking.scheduling_type
    booking.assignment_reason = event.assignment_reason or booking.assignment_reason


def merge_booking_detail(booking, event, *, at):
    """Apply a detail trigger (place, interviewer, no-show) to locked `booking`; return a sentence.

    The state and schedule are left alone. Place and interviewer follow the newest
    such event (`details_at`), no-shows the newest mark or unmark (`no_show_at`), so
    a late copy never undoes a newer change. Returns "" when nothing changed.
    """
    said = []
    if event.trigger in (events.BOOKING_LOCATION_UPDATED, events.BOOKING_REASSIGNED):
        if booking.details_at is not None and at < booking.details_at:
            return ""
        booking.details_at = at
        if event.trigger == events.BOOKING_LOCATION_UPDATED:
            # The link and the place move together: a meeting moved to an office has no link.
            booking.meeting_url, booking.location = event.meeting_url, event.location
            said.append(f"place now {event.location or event.meeting_url or 'not given'}")
        else:
            _copy_host(booking, event)
            said.append(f"interviewer now {booking.organizer or 'unknown'}")
    else:
        if booking.no_show_at is not None and at < booking.no_show_at:
            return ""
        missed = event.no_show_for(booking.attendee_key or booking.email)
        if missed is not None:
            booking.no_show = missed
            said.append("applicant marked as no-show" if missed else "applicant's no-show undone")
        if event.no_show_host is not None:
            booking.no_show_host = event.no_show_host
            said.append("interviewer marked as no-show" if event.no_show_host
                        else "interviewer's no-show undone")
        if said:
            booking.no_show_at = at
    if said:
        booking.updated_at = timezone.now()
        booking.save()
    return "; ".join(said)


# --- deriving an application's schedule from its bookings --------------------------------


def sync_application(application, *, touched, opens, move_status=True, delivery=None, user=None,
                     note=""):
    """Recompute `application`'s schedule and status from its bookings after `touched` changed.

    `application` must be locked (select_for_update) by the caller's transaction.
    The current interview is the newest live (accepted, not rescheduled away)
    booking in `touched`'s chain. If the application's current booking belongs to
    another chain and is still live, it stays current unless `opens` (a new or
    moved booking: the newest booking wins). Then the status follows the one
    state machine: a booking schedules `new`/`waiting_*`; losing it reverts
    `*_scheduled` to `waiting_*` (skipped when `move_status` is False: a meeting
    that ended records the interview only). The cause (`delivery` or `user`, and
    `note`) goes on the StatusChange. Returns a sentence saying what changed.
    """
    bookings = list(application.bookings.all())
    _retire_applicant_claims(application, touched, bookings, opens=opens)
    successors = defaultdict(list)
    by_key = {(b.uid, b.attendee_key): b for b in bookings}
    for b in bookings:
        if b.reschedule_uid:
            successors[(b.reschedule_uid, b.attendee_key)].append(b)
    for b in bookings:
        # Calendly names the successor on the cancel half of a reschedule (§8).
        after = by_key.get((b.rescheduled_to_uid, b.attendee_key)) if b.rescheduled_to_uid else None
        if after is not None and after not in successors[(b.uid, b.attendee_key)]:
            successors[(b.uid, b.attendee_key)].append(after)

    # A booking whose predecessor is not linked by rescheduleUid (its reschedule delivery was
    # lost, or never sent: PROTOCOL.md §3 edge 2) still replaces the older versions of its
    # iCalUID chain. A version is the booking's own iCalSequence (+1 per reschedule); a cancel
    # carries it + 1 (§4). Recurring occurrences share an iCalUID at one version, so none of
    # them replaces another, and a linked successor replaces only its own predecessor.
    known = {b.uid for b in bookings}
    unlinked = defaultdict(list)
    for b in bookings:
        if b.ical_uid and b.reschedule_uid not in known:
            unlinked[b.ical_uid].append(b)

    def version(b):
        if b.last_sequence < 0:
            return -1  # no iCalSequence known (the API has none): links decide alone
        return b.last_sequence - (1 if b.state == Booking.State.CANCELLED else 0)

    def superseded(b):
        if any(s.state not in NOT_SUPERSEDING for s in successors[(b.uid, b.attendee_key)]):
            return True
        mine = version(b)
        return mine >= 0 and any(
            other.pk != b.pk and other.state not in NOT_SUPERSEDING and version(other) > mine
            for other in unlinked[b.ical_uid]
        ) if b.ical_uid else False

    def moving(b):
        # The cancel half of a reschedule whose new half has not arrived yet: the interview is
        # being moved, not lost, so if it is the current one it stays current until its
        # successor takes over (§8). It never becomes current by itself: a cancel schedules nothing.
        return (b.state == Booking.State.CANCELLED and bool(b.rescheduled_to_uid)
                and not successors[(b.uid, b.attendee_key)]
                and b.uid == application.interview_booking_uid)

    def live(b):
        return (b.state == Booking.State.ACCEPTED or moving(b)) and not superseded(b)

    def recency(b):
        return (b.last_event_at or b.created_at, b.last_sequence, b.pk)

    def newest(candidates):
        return max(candidates, key=recency, default=None)

    chain = _chain_of(touched, bookings)
    candidate = newest(b for b in chain if live(b))
    previous = next((b for b in bookings if b.uid == application.interview_booking_uid), None)
    if previous is not None and previous not in chain and live(previous):
        # Another booking is current. The touched one replaces it only if it is a new booking
        # newer than it: a late copy of an older round's create must not bring that round back.
        takes_over = (opens and candidate is not None and candidate.pk == touched.pk
                      and recency(candidate) > recency(previous))
        current = candidate if takes_over else previous
    else:
        current = candidate

    pending = newest(b for b in bookings if b.state == Booking.State.PENDING and not superseded(b))
    asked = None
    if current is None:
        asked = newest(b for b in chain if b.state == Booking.State.CANCELLED
                       and b.request_reschedule and not superseded(b))
    fields = {
        "interview_start": current.start if current else None,
        "interview_end": current.end if current else None,
        "interview_meeting_url": current.meeting_url if current else "",
        "interview_booking_uid": current.uid if current else "",
        "interview_time_zone": current.time_zone if current else "",
        "interview_event_type": current.event_type if current else "",
        "interview_ended_at": current.ended_at if current else None,
        "interview_organizer": current.organizer[:200] if current else "",
        "interview_location": current.location if current else "",
        "interview_no_show": bool(current and current.no_show),
        "interview_kind": current.kind if current else "",
        "interview_unverified": current.unverified if current else False,
        "interview_round": current.round if current else None,
        "pending_booking_uid": pending.uid if pending else "",
        "pending_start": pending.start if pending else None,
        "pending_end": pending.end if pending else None,
        "reschedule_requested": asked is not None,
        "reschedule_reason": asked.reason if asked else "",
    }
    previous_uid = application.interview_booking_uid
    was_scheduled = bool(previous_uid)
    changed = {name: value for name, value in fields.items() if getattr(application, name) != value}

    target = None
    if not move_status:
        pass
    elif current is not None and current.uid != previous_uid:
        # Only a booking that has just become current schedules; events that leave the current
        # booking as it was (a pending request, a stale copy) do not move the status.
        target = status_after_booking(application.status)
    elif current is None and was_scheduled:
        target = status_after_cancel(application.status)
    words = []
    if current is not None:
        when = f" at {current.start:%Y-%m-%d %H:%M} UTC" if current.start else ""
        words.append(f"interview {current.uid}{when}")
        if moving(current):
            words.append("being moved to a new time (the new booking has not arrived yet)")
    elif was_scheduled:
        words.append("schedule cleared")
    if target is not None:
        # The new schedule rides on the status move's UPDATE: one write of the row.
        old = application.status
        application.move_to(target, delivery=delivery, user=user, note=note, fields=changed)
        words.append(f"{old} → {target}")
    elif changed:
        changed["updated_at"] = timezone.now()
        Application.objects.filter(pk=application.pk).update(**changed)
        bump_cohort_version(application.cohort_id)
        for name, value in changed.items():
            setattr(application, name, value)
    if pending is not None:
        words.append(f"pending confirmation {pending.uid}")
    if asked is not None:
        words.append("reschedule requested by the host")
    if not words:
        words.append("no change to the schedule" if not changed else "booking details updated")
    sentence = "; ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def _retire_applicant_claims(application, touched, bookings, *, opens):
    """Cancel the applicant's own claim ("I've booked") that a provider's booking now replaces.

    An applicant's word holds the schedule only until the provider tells us about a
    booking (issue 9): an accepted provider booking that opens while the application
    is scheduled on such a claim takes its place, whichever is newer. Claims of
    earlier rounds (the status has moved on) are history and stay as they were.
    Updates `bookings` in place; writes a ScheduleChange per claim replaced.
    """
    if not opens or touched.by_hand or touched.state != Booking.State.ACCEPTED:
        return
    if application.status not in SCHEDULED:
        return
    for claim in bookings:
        if claim.kind != Booking.Kind.APPLICANT or claim.state != Booking.State.ACCEPTED:
            continue
        claim.state = Booking.State.CANCELLED
        claim.reason = f"Replaced by the provider's booking {touched.uid}."
        claim.updated_at = timezone.now()
        Booking.objects.filter(pk=claim.pk).update(
            state=claim.state, reason=claim.reason, updated_at=claim.updated_at)
        ScheduleChange.objects.create(
            application=application, booking=touched,
            action=ScheduleChange.Action.APPLICANT_REPLACED,
            detail=f"The provider's booking {touched.uid} replaces what the applicant reported.",
        )


def _chain_of(touched, bookings):
    """Return the bookings connected to `touched` by reschedule links or a shared iCalUID (same seat)."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    for b in bookings:
        node = ("uid", b.uid, b.attendee_key)
        find(node)
        if b.reschedule_uid:
            union(node, ("uid", b.reschedule_uid, b.attendee_key))
        if b.rescheduled_to_uid:
            union(node, ("uid", b.rescheduled_to_uid, b.attendee_key))
        if b.ical_uid:
            union(node, ("ical", b.ical_uid, b.attendee_key))
    root = find(("uid", touched.uid, touched.attendee_key))
    return [b for b in bookings if find(("uid", b.uid, b.attendee_key)) == root]
