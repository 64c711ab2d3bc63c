"""Apply one provider-neutral booking event: match it, merge it into its booking, sync the application.

`apply_booking_event` is the one entry point, called by ingest (webhook deliveries)
inside the delivery's transaction. Matching lives in `matching.py`, the booking
merge and the schedule derivation in `bookings.py`.
"""

from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from applications.models import Application
from orphans.services import ChainMatchedMeanwhile, close_orphan_for_booking, record_orphan

from . import events, links
from .audit import record_booking_event, record_booking_moved
from .bookings import BookingClaimed, merge_booking_detail, merge_booking_event, sync_application
from .matching import BY_REFERENCE, booking_chain, match_application
from .models import Booking, Outcome
from .rounds import round_for_event, wrong_round

@dataclass
class Result:
    """What applying one delivery did: an Outcome value, a sentence, and what it touched."""

    outcome: str
    detail: str = ""
    application: Application | None = None
    match_rule: str = ""  # a MatchRule value: how the application was found
    attention: str = ""  # a sentence for sync health when an admin should look (wrong round, bad ref)
    booking: Booking | None = None  # the Booking row the event was merged into, as it now stands


# --- applying one event ------------------------------------------------------------------


class _OwnerChanged(Exception):
    """The booking's chain got an owner (an admin matched it) after we found no application: match again."""


# The booking chain is read before the booking row is locked, so a concurrent delivery or an
# admin can bind the booking meanwhile (BookingClaimed, _OwnerChanged). After this many fresh
# tries we go with what we have rather than loop.
MATCH_ATTEMPTS = 3


def apply_booking_event(event, *, cohort, delivery=None, note=""):
    """Apply one parsed BookingEvent to `cohort`'s applications; run inside a transaction.

    Matches the booking to an application (`match_application`), merges the event
    into the Booking row for its `uid` (newest event wins, so any order ends the
    same), then recomputes the application's schedule and status from its
    bookings (`sync_application`). Detail triggers (place, interviewer, no-show)
    change the known booking's details and never the status. `delivery` (a
    WebhookDelivery or None) is recorded as the cause of any status change, with
    `note` (e.g. "Cal.com API sync #3" when the event came from the API).
    Returns a Result with outcome applied, orphaned or ignored.
    """
    if event.trigger == events.PING:
        return Result(Outcome.IGNORED, "Ping test: nothing to change.")
    if event.trigger in events.DETAIL_TRIGGERS:
        return _apply_detail(event, cohort, delivery)
    if event.trigger not in events.BOOKING_TRIGGERS:
        return Result(Outcome.IGNORED, f"{event.trigger} is not a trigger Cohort-OS acts on.")
    event = seat_of(event, cohort)
    # No savepoint per attempt: a try that must match again stops before it writes anything
    # but the booking merge, which the next try repeats to the same result (the locks it took
    # are kept until commit, as they would be re-taken).
    with transaction.atomic(savepoint=False):
        for attempt in range(1, MATCH_ATTEMPTS + 1):
            try:
                return _apply_once(event, cohort, delivery, final=attempt == MATCH_ATTEMPTS, note=note)
            except (_OwnerChanged, BookingClaimed):
                continue


def _apply_once(event, cohort, delivery, *, final, note=""):
    chain = booking_chain(cohort, event)
    # The application comes back locked: every change to one application's schedule queues
    # here, whatever booking it is about.
    application, how = match_application(cohort, event, chain=chain)
    if application is not None:
        application.cohort = cohort  # in hand (with its rounds): no second read of the row
    at = event.created_at or (delivery.received_at if delivery else timezone.now())
    booked_round = None
    if event.trigger in events.NEW_BOOKING_TRIGGERS:
        booked_round = round_for_event(cohort, event)
    # Another delivery may have bound this booking after we matched; only the booking link's
    # own application_id outranks that binding (BookingClaimed: match again).
    booking, created, merged = merge_booking_event(cohort, event, application, at=at, round=booked_round,
                                           take=how in BY_REFERENCE or final)

    owner_id = booking.application_id
    claimed = owner_id is not None and owner_id != (application.pk if application else None)
    ref_problem = links.check_ref(cohort, event.application_id).problem
    if application is None:
        try:
            result = _unmatched(cohort, event, booking, how, delivery)
            result.attention, result.booking = ref_problem, booking
            return result
        except ChainMatchedMeanwhile:
            if final:
                raise
            raise _OwnerChanged from None  # an admin matched the chain meanwhile: match again
    if owner_id != application.pk:
        # Was an orphan (or is claimed by metadata): the booking follows the match.
        Booking.objects.filter(pk=booking.pk).update(application=application)
        booking.application = application
        close_orphan_for_booking(cohort, booking, application)
    if not created or any(b.application_id is None and b.pk != booking.pk for b in chain):
        # A new booking's links are the event's, so `chain` already shows whether it has
        # unmatched neighbours; a stored one may carry links this event does not.
        _adopt_chain(cohort, booking, application)
    # The round comes from the event type; a booking of the other round's event type is
    # recorded but must not move the status as if it were the round the applicant waits for.
    misfit = wrong_round(application.status, booked_round) if event.trigger in events.NEW_BOOKING_TRIGGERS else ""
    who = event.describe_change()
    changed = sync_application(
        application, touched=booking,
        opens=event.trigger in (events.BOOKING_CREATED, events.BOOKING_RESCHEDULED),
        move_status=event.trigger != events.MEETING_ENDED and not misfit,
        delivery=delivery, note="; ".join(filter(None, [note, who])),
    )
    if who:
        changed = f"{who}; {changed[:1].lower()}{changed[1:]}"
    if misfit:
        changed = f"{changed} {misfit}: status left as it was."
    if merged or owner_id != application.pk:
        # A copy that told the booking nothing new (a late resend) is not a line of its own.
        record_booking_event(application, event, booking, delivery=delivery)
    if claimed:
        # The booking left its previous application: that one's schedule must forget it.
        previous = Application.objects.select_for_update().filter(pk=owner_id).first()
        if previous is not None:
            sync_application(previous, touched=booking, opens=False, delivery=delivery,
                             note=f"Booking {booking.uid} belongs to {application.public_id}")
            record_booking_moved(booking, source=previous, target=application, delivery=delivery)
    attention = " ".join(filter(None, [f"{misfit}." if misfit else "", ref_problem]))
    return Result(Outcome.APPLIED, changed, application, match_rule=how, attention=attention, booking=booking)


def seat_of(event, cohort):
    """Return `event` keyed to its seat when it is about a seated booking but did not say so.

    A seat's later events may arrive without `seatsPerTimeSlot` (§4 lists what a cancel
    carries); if its uid is stored only as seats, the booker's own seat is the one meant.
    Returns the BookingEvent, unchanged or with `attendee_key` set (one query when it may apply).
    """
    if event.attendee_key or event.trigger in events.NEW_BOOKING_TRIGGERS or not event.email:
        return event
    keys = set(Booking.objects.filter(cohort=cohort, uid=event.uid)
               .values_list("attendee_key", flat=True)[:50])
    if keys and "" not in keys and event.email in keys:
        return replace(event, attendee_key=event.email)
    return event


def _apply_detail(event, cohort, delivery):
    """Apply a place, interviewer or no-show change to every known seat of `event.uid`.

    Locks the owning applications first, then the bookings (the order the booking
    path takes), and copies the change onto each application's schedule without
    moving its status: a no-show is for an admin to decide on.
    """
    owners = sorted(set(Booking.objects.filter(cohort=cohort, uid=event.uid)
                        .values_list("application_id", flat=True)), key=lambda pk: pk or 0)
    if not owners:
        return Result(Outcome.IGNORED, f"No booking {event.uid} is known; nothing to update.")
    with transaction.atomic():
        locked = {a.pk: a for a in Application.objects.select_for_update().filter(
            pk__in=[pk for pk in owners if pk]).order_by("pk")}
        at = event.created_at or (delivery.received_at if delivery else timezone.now())
        said, first = [], None
        for booking in Booking.objects.select_for_update().filter(
                cohort=cohort, uid=event.uid).order_by("pk"):
            sentence = merge_booking_detail(booking, event, at=at)
            application = locked.get(booking.application_id)
            if sentence and application is not None:
                sync_application(application, touched=booking, opens=False, move_status=False,
                                 delivery=delivery)
                record_booking_event(application, event, booking, delivery=delivery, detail=sentence)
                first = first or application
            if sentence:
                who = f" for {application.public_id}" if application is not None else " (unmatched)"
                said.append(f"Booking {booking.uid}{who}: {sentence}")
    if not said:
        return Result(Outcome.IGNORED, f"{event.trigger} for {event.uid} changed nothing (an older "
                      "change, or no attendee of ours named).")
    return Result(Outcome.APPLIED, "; ".join(said)[:480] + ".", first)


def _adopt_chain(cohort, booking, application):
    """Give `application` the unmatched bookings of `booking`'s chain (and close their orphans).

    A reschedule whose email changed can arrive before its create and be orphaned;
    once the create matches, the whole chain is the application's. Returns how many.
    """
    strays = [b for b in Booking.objects.unmatched_chain(booking) if b.pk != booking.pk]
    for stray in strays:
        Booking.objects.filter(pk=stray.pk, application__isnull=True).update(application=application)
        close_orphan_for_booking(cohort, stray, application)
    return len(strays)


def _unmatched(cohort, event, booking, reason, delivery):
    if event.trigger in events.NEW_BOOKING_TRIGGERS and booking.state in (
        Booking.State.ACCEPTED, Booking.State.PENDING
    ):
        orphan = record_orphan(cohort, booking, reason=reason, delivery=delivery,
                               application_ref=event.application_id,
                               previous_uid=event.reschedule_uid)
        return Result(Outcome.ORPHANED, f"No application matches {event.email} ({reason}); "
                      f"orphaned interview #{orphan.pk}.")
    close_orphan_for_booking(cohort, booking, None)
    return Result(Outcome.IGNORED, f"No application matches {event.email}; booking {booking.uid} "
                  f"recorded as {booking.get_state_display().lower()}.")
