"""Apply Cal.com booking events to applications: store, match, merge, move status.

The flow for one delivery (PROTOCOL.md §10): `receive_calcom_delivery` stores the
raw body (unique on its sha256 and on its logical key), then `process_delivery`
locks the stored row and runs `apply_booking_event` in one transaction, writing
the outcome back on the row.
"""

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from applications.models import Application, bump_cohort_version
from orphans.models import OrphanedInterview
from orphans.services import ChainMatchedMeanwhile, close_orphan_for_booking, record_orphan

from . import calcom
from .models import SETTLED, Booking, Outcome, WebhookDelivery
from .status import status_after_booking, status_after_cancel

logger = logging.getLogger(__name__)

STATE_FOR_TRIGGER = {
    calcom.BOOKING_CREATED: Booking.State.ACCEPTED,
    calcom.BOOKING_RESCHEDULED: Booking.State.ACCEPTED,
    calcom.BOOKING_REQUESTED: Booking.State.PENDING,
    calcom.BOOKING_CANCELLED: Booking.State.CANCELLED,
    calcom.BOOKING_REJECTED: Booking.State.REJECTED,
}
# A successor in one of these states has not replaced its predecessor (yet).
NOT_SUPERSEDING = frozenset({Booking.State.PENDING, Booking.State.REJECTED})


@dataclass
class Result:
    """What applying one delivery did: an Outcome value, a sentence, and what it touched."""

    outcome: str
    detail: str = ""
    application: Application | None = None


# --- storing and processing deliveries -------------------------------------------------


def receive_calcom_delivery(cohort, body):
    """Store a verified Cal.com body for `cohort`, then apply it exactly once.

    `body` is the raw request bytes. Returns (WebhookDelivery, Result). The
    delivery is stored before anything is applied; a body we cannot use is stored
    with outcome "rejected" and a Result whose detail names the problem. A
    byte-identical or re-serialised redelivery of an event already settled gets
    outcome "duplicate" and changes nothing; one whose first copy failed is
    applied now. Raises OperationalError/InterfaceError when the database is
    unreachable (the caller answers 503; the stored row waits for a redelivery).
    """
    event, error = None, ""
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        error = f"Body is {len(body)} bytes; the limit is {settings.WEBHOOK_MAX_BODY_BYTES} (1 MiB)."
    else:
        try:
            event = calcom.parse(body)
        except calcom.ParseError as exc:
            error = str(exc)
    fields = {
        "cohort": cohort,
        "body": body,
        "sha256": hashlib.sha256(body).hexdigest(),
        "trigger_event": (event.trigger if event else calcom.peek_trigger(body))[:64],
        "booking_uid": event.uid[:64] if event else "",
        "event_created_at": event.created_at if event else None,
        "logical_key": (event.logical_key[:200] or None) if event else None,
    }
    if error:
        fields.update(outcome=Outcome.REJECTED, error=error, processed_at=timezone.now())
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(**fields)
    except IntegrityError:
        return _redelivered(fields, event)
    if error:
        return delivery, Result(Outcome.REJECTED, error)
    return delivery, process_delivery(delivery, event)


def _redelivered(fields, event):
    """Handle a body whose sha256 or logical key is already stored."""
    cohort = fields["cohort"]
    original = WebhookDelivery.objects.filter(cohort=cohort, sha256=fields["sha256"]).first()
    if original is not None:
        WebhookDelivery.objects.filter(pk=original.pk).update(redeliveries=F("redeliveries") + 1)
    else:
        original = WebhookDelivery.objects.get(cohort=cohort, logical_key=fields["logical_key"])
        # A re-serialised copy: keep its bytes too, marked as the duplicate it is.
        fields.update(logical_key=None, outcome=Outcome.DUPLICATE, duplicate_of=original,
                      detail=f"Same event as delivery #{original.pk}.", processed_at=timezone.now())
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(**fields)
        except IntegrityError:
            pass  # the very same re-serialised bytes arrived twice at once; one copy is enough
    if original.outcome == Outcome.REJECTED:
        return original, Result(Outcome.REJECTED, original.error)
    if original.outcome in SETTLED:
        return original, Result(Outcome.DUPLICATE, f"Already received as delivery #{original.pk}.")
    # The first copy never finished (crash, lost connection): this redelivery completes it.
    return original, process_delivery(original, event if fields.get("outcome") is None else None)


def process_delivery(delivery, event=None):
    """Apply a stored delivery in one transaction and record its outcome on the row.

    `event` is the parsed BookingEvent, parsed again from the stored bytes when
    None (reprocessing). Returns a Result; a delivery already settled gives
    outcome "duplicate" and is left as it is, except a rejected one, which is
    parsed again (the parser may have learnt since). An unexpected error is recorded as
    outcome "failed" with the error and returned, so the delivery can be retried.
    Database connection errors propagate.
    """
    try:
        with transaction.atomic():
            # of=("self",): lock the delivery only; locking its cohort too would queue every
            # delivery of the cohort behind this one.
            locked = (WebhookDelivery.objects.select_for_update(of=("self",))
                      .select_related("cohort").get(pk=delivery.pk))
            if locked.outcome in SETTLED and locked.outcome != Outcome.REJECTED:
                return Result(Outcome.DUPLICATE, f"Already processed as delivery #{locked.pk}.")
            if event is None:
                event = calcom.parse(locked.body_bytes)
            result = apply_booking_event(event, cohort=locked.cohort, delivery=locked)
            locked.outcome, locked.detail, locked.error = result.outcome, result.detail[:500], ""
            locked.application = result.application
            locked.attempts += 1
            locked.processed_at = timezone.now()
            locked.save(update_fields=["outcome", "detail", "error", "application", "attempts",
                                       "processed_at"])
    except calcom.ParseError as exc:
        _record_failure(delivery, Outcome.REJECTED, str(exc))
        return Result(Outcome.REJECTED, str(exc))
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("Applying webhook delivery #%s failed", delivery.pk)
        message = f"{type(exc).__name__}: {exc}"
        try:
            _record_failure(delivery, Outcome.FAILED, message)
        except DatabaseError:
            logger.exception("Could not record the failure of delivery #%s", delivery.pk)
        return Result(Outcome.FAILED, message)
    delivery.outcome = result.outcome
    return result


def _record_failure(delivery, outcome, message):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        outcome=outcome, error=message[:5000], attempts=F("attempts") + 1,
        processed_at=timezone.now(),
    )
    delivery.outcome = outcome


# --- applying one event ------------------------------------------------------------------


class _OwnerChanged(Exception):
    """The booking's owner changed while we matched without a lock: match again."""


# Matching reads without locks; a concurrent delivery can claim the booking meanwhile. After
# this many fresh tries we go with what we have rather than loop.
MATCH_ATTEMPTS = 3


def apply_booking_event(event, *, cohort, delivery=None):
    """Apply one parsed BookingEvent to `cohort`'s applications; run inside a transaction.

    Matches the booking to an application (`match_application`), merges the event
    into the Booking row for its `uid` (newest event wins, so any order ends the
    same), then recomputes the application's schedule and status from its
    bookings (`sync_application`). `delivery` (a WebhookDelivery or None) is
    recorded as the cause of any status change. Returns a Result with outcome
    applied, orphaned or ignored.
    """
    if event.trigger == calcom.PING:
        return Result(Outcome.IGNORED, "Ping test: nothing to change.")
    if event.trigger not in calcom.BOOKING_TRIGGERS:
        return Result(Outcome.IGNORED, f"{event.trigger} is not a trigger Cohort-OS acts on.")
    for attempt in range(1, MATCH_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _apply_once(event, cohort, delivery, final=attempt == MATCH_ATTEMPTS)
        except _OwnerChanged:
            continue  # the savepoint rolled back, releasing the booking lock; match afresh


def _apply_once(event, cohort, delivery, *, final):
    application, how = match_application(cohort, event)
    if application is not None:
        # Every change to one application's schedule queues here, whatever booking it is about.
        application = Application.objects.select_for_update().get(pk=application.pk)
    at = event.created_at or (delivery.received_at if delivery else timezone.now())
    booking = merge_booking_event(cohort, event, application, at=at)

    owner_id = booking.application_id
    claimed = owner_id is not None and owner_id != (application.pk if application else None)
    if claimed and how != MATCHED_BY_METADATA and not final:
        # Another delivery bound this booking after we matched; only the booking link's own
        # application_id outranks that binding.
        raise _OwnerChanged
    if application is None:
        try:
            return _unmatched(cohort, event, booking, how, delivery)
        except ChainMatchedMeanwhile:
            if final:
                raise
            raise _OwnerChanged from None  # an admin matched the chain meanwhile: match again
    if owner_id != application.pk:
        # Was an orphan (or is claimed by metadata): the booking follows the match.
        Booking.objects.filter(pk=booking.pk).update(application=application)
        booking.application = application
        close_orphan_for_booking(cohort, booking, application)
    _adopt_chain(cohort, booking, application)
    changed = sync_application(
        application, touched=booking,
        opens=event.trigger in (calcom.BOOKING_CREATED, calcom.BOOKING_RESCHEDULED),
        move_status=event.trigger != calcom.MEETING_ENDED,
        delivery=delivery,
    )
    if claimed:
        # The booking left its previous application: that one's schedule must forget it.
        previous = Application.objects.select_for_update().filter(pk=owner_id).first()
        if previous is not None:
            sync_application(previous, touched=booking, opens=False, delivery=delivery,
                             note=f"Booking {booking.uid} belongs to {application.public_id}")
    return Result(Outcome.APPLIED, changed, application)


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


MATCHED_BY_METADATA = "metadata"
MATCHED_BY_CHAIN = "chain"
MATCHED_BY_EMAIL = "email"


def match_application(cohort, event):
    """Find the application `event` is about, within `cohort`.

    Tries, in order: `metadata.application_id` (public id, or numeric pk) when it
    names an application of this cohort; a booking chain we already know (`uid`,
    `rescheduleUid`, `iCalUID`; the booking's own uid first); the booker's email
    against contact and alternate emails. Returns (Application, how) with how
    "metadata", "chain" or "email"; or (None, reason) with an
    OrphanedInterview.Reason value ("no_match" or "ambiguous").
    """
    applications = Application.objects.filter(cohort=cohort)
    ref = event.application_id
    if ref:
        by_ref = Q(public_id=ref)
        if ref.isascii() and ref.isdigit() and len(ref) < 18:
            by_ref |= Q(pk=int(ref))
        found = applications.filter(by_ref).first()
        if found is not None:
            return found, MATCHED_BY_METADATA

    known = (
        Booking.objects.linked_to(event.uid, reschedule_uid=event.reschedule_uid, ical_uid=event.ical_uid)
        .filter(cohort=cohort, application__isnull=False)
        .annotate(own=Case(When(uid=event.uid, then=Value(0)), default=Value(1)))
        .order_by("own", F("last_event_at").desc(nulls_last=True), "-pk")
        .select_related("application")
        .first()
    )
    if known is not None:
        return known.application, MATCHED_BY_CHAIN

    by_email = list(applications.with_email(event.email).order_by("pk")[:2])
    if len(by_email) == 1:
        return by_email[0], MATCHED_BY_EMAIL
    if len(by_email) > 1:
        return None, OrphanedInterview.Reason.AMBIGUOUS
    return None, OrphanedInterview.Reason.NO_MATCH


def merge_booking_event(cohort, event, application, *, at):
    """Fold `event` into the Booking row for its uid (created if new) and return the row.

    Links (`iCalUID`, `rescheduleUid`) are always kept. State and schedule follow
    the event only when it is newer, by (`at`, iCalSequence), than the newest one
    already applied: an old event arriving late never overwrites newer state.
    MEETING_ENDED only records when the interview ended. `at` is an aware UTC
    datetime, the event's createdAt.
    """
    booking, created = Booking.objects.select_for_update().get_or_create(
        cohort=cohort, uid=event.uid[:64], defaults={"application": application}
    )
    if event.ical_uid:
        booking.ical_uid = event.ical_uid[:200]
    if event.reschedule_uid and event.reschedule_uid != event.uid:
        booking.reschedule_uid = event.reschedule_uid[:64]

    sequence = -1 if event.ical_sequence is None else event.ical_sequence
    if booking.last_event_at is None:
        newer = True
    elif event.created_at is None and sequence >= 0 and booking.last_sequence >= 0:
        # No createdAt to order by (only our arrival time): Cal.com's sequence is the better clock.
        newer = sequence > booking.last_sequence
    else:
        newer = (at, sequence) > (booking.last_event_at, booking.last_sequence)
    if event.trigger == calcom.MEETING_ENDED:
        booking.ended_at = booking.ended_at or event.end
        if booking.start is None:
            _copy_schedule(booking, event)
        if created and event.booking_status == "ACCEPTED":
            # A meeting we hear of only as it ends (we missed its booking) still took place;
            # without a state it would count as a reschedule that cancelled its predecessor.
            booking.state = Booking.State.ACCEPTED
    elif newer:
        booking.state = STATE_FOR_TRIGGER[event.trigger]
        cancelled = event.trigger == calcom.BOOKING_CANCELLED
        booking.request_reschedule = cancelled and event.request_reschedule
        booking.reason = event.reason if event.trigger in (
            calcom.BOOKING_CANCELLED, calcom.BOOKING_REJECTED) else ""
        booking.last_event_at, booking.last_sequence = at, sequence
        _copy_schedule(booking, event)
    elif booking.start is None:
        _copy_schedule(booking, event)  # a stale event still tells us when the booking was
    booking.updated_at = timezone.now()
    booking.save()
    return booking


def _copy_schedule(booking, event):
    booking.start, booking.end = event.start, event.end
    # Cancel and reject bodies carry no metadata (§4): keep the link we had.
    booking.meeting_url = event.meeting_url or booking.meeting_url
    booking.email = event.email or booking.email
    booking.name = event.name or booking.name
    booking.time_zone = event.time_zone or booking.time_zone
    booking.event_type = (event.title or event.event_type or booking.event_type)[:200]


def _unmatched(cohort, event, booking, reason, delivery):
    if event.trigger in calcom.NEW_BOOKING_TRIGGERS and booking.state in (
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
    successors = defaultdict(list)
    for b in bookings:
        if b.reschedule_uid:
            successors[b.reschedule_uid].append(b)

    def superseded(b):
        return any(s.state not in NOT_SUPERSEDING for s in successors[b.uid])

    def live(b):
        return b.state == Booking.State.ACCEPTED and not superseded(b)

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
        "pending_booking_uid": pending.uid if pending else "",
        "pending_start": pending.start if pending else None,
        "pending_end": pending.end if pending else None,
        "reschedule_requested": asked is not None,
        "reschedule_reason": asked.reason if asked else "",
    }
    previous_uid = application.interview_booking_uid
    was_scheduled = bool(previous_uid)
    changed = [name for name, value in fields.items() if getattr(application, name) != value]
    if changed:
        fields["updated_at"] = timezone.now()
        Application.objects.filter(pk=application.pk).update(**fields)
        bump_cohort_version(application.cohort_id)
        for name, value in fields.items():
            setattr(application, name, value)

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
    elif was_scheduled:
        words.append("schedule cleared")
    if target is not None:
        old = application.status
        application.move_to(target, delivery=delivery, user=user, note=note)
        words.append(f"{old} → {target}")
    if pending is not None:
        words.append(f"pending confirmation {pending.uid}")
    if asked is not None:
        words.append("reschedule requested by the host")
    if not words:
        words.append("no change to the schedule" if not changed else "booking details updated")
    sentence = "; ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def _chain_of(touched, bookings):
    """Return the bookings connected to `touched` by rescheduleUid links or a shared iCalUID."""
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
        find(("uid", b.uid))
        if b.reschedule_uid:
            union(("uid", b.uid), ("uid", b.reschedule_uid))
        if b.ical_uid:
            union(("uid", b.uid), ("ical", b.ical_uid))
    root = find(("uid", touched.uid))
    return [b for b in bookings if find(("uid", b.uid)) == root]
