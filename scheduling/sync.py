"""Reconcile a cohort with Cal.com's API: find and apply what the webhooks missed.

Cal.com delivers each webhook at most once (PROTOCOL.md §6) and sends none for some
flows, so the API is the source of truth. A sync pages through the cohort's bookings
(scheduling/providers/calcom_api.py), turns each into the same BookingEvent a webhook
would have produced and applies it through `apply_booking_event`: matching, the
booking merge (newest change wins) and the one state machine. A booking the webhooks
already delivered changes nothing; a missed create, reschedule or cancel is applied
and recorded as drift on the run (SyncDrift), in a sentence an admin can read.
A seated booking is one event per listed seat; a seat we hold that its booking no longer
lists was cancelled, and is cancelled here too (`missed_seat_cancels`).

One sync per cohort at a time: the running SyncRun row is the lock (a partial
unique constraint), taken by `start_sync` and released by `run_sync`.
"""

import logging
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from . import events
from .bookings import booking_key, unchanged_by
from .models import Booking, SyncDrift, SyncRun
from .providers import calcom_api
from .rounds import round_for_event
from .services import apply_booking_event, seat_of

logger = logging.getLogger(__name__)

# Without a previous successful sync, bookings created or updated this far back are checked.
DEFAULT_WINDOW = timedelta(days=30)
# A new window starts this long before the last successful sync started (clock skew, paging).
OVERLAP = timedelta(minutes=15)
# A run still "running" after this long belongs to a worker that died: it no longer holds the lock.
ABANDONED_AFTER = timedelta(hours=2)
PROGRESS_EVERY = 25  # bookings per batch: one read of their stored rows, one write of progress and drift

MISSED = {
    events.BOOKING_CREATED: "booking was missed",
    events.BOOKING_RESCHEDULED: "reschedule was missed",
    events.BOOKING_REQUESTED: "booking request was missed",
    events.BOOKING_CANCELLED: "cancellation was missed",
    events.BOOKING_REJECTED: "rejection was missed",
}


class SyncError(Exception):
    """A sync cannot start; the message is a sentence for the admin."""


class SyncAlreadyRunning(SyncError):
    """Another sync of the cohort is running; `run` is that SyncRun."""

    def __init__(self, run):
        super().__init__(f"A sync of this cohort is already running (started "
                         f"{run.started_at:%Y-%m-%d %H:%M} UTC).")
        self.run = run


def start_sync(cohort, *, trigger, user=None):
    """Take the cohort's sync lock: create and return its running SyncRun.

    `trigger` is a SyncRun.Trigger value; `user` who asked (or None). Raises
    SyncError when the cohort has no Cal.com API key, SyncAlreadyRunning when a
    run holds the lock. A run abandoned for ABANDONED_AFTER is marked failed first.
    """
    if cohort.is_archived:
        raise SyncError(f"The cohort “{cohort.name}” is archived; its bookings are no longer synced.")
    if not cohort.calcom_api_key:
        raise SyncError("This cohort has no Cal.com API key: add one in the cohort's settings first.")
    now = timezone.now()
    SyncRun.objects.filter(cohort=cohort, status=SyncRun.Status.RUNNING,
                           started_at__lt=now - ABANDONED_AFTER).update(
        status=SyncRun.Status.FAILED, finished_at=now,
        error="The sync stopped without finishing (its worker was restarted); it was given up.",
    )
    try:
        with transaction.atomic():
            return SyncRun.objects.create(cohort=cohort, trigger=trigger, requested_by=user)
    except IntegrityError:
        running = SyncRun.objects.filter(cohort=cohort, status=SyncRun.Status.RUNNING).first()
        if running is None:  # finished between our insert and this read: the caller may try again
            raise SyncError("A sync of this cohort just finished; try again.") from None
        raise SyncAlreadyRunning(running) from None


def cohort_event_types(cohort):
    """Return the event types of the cohort's interview rounds: a set of lower-case strings
    (numeric ids and slugs, as InterviewRound.event_types holds them); empty means all."""
    wanted = set()
    for listed in cohort.rounds.values_list("event_types", flat=True):
        wanted.update(str(v).strip().lower() for v in listed or () if str(v).strip())
    return wanted


def window_start(cohort, run):
    """Return the aware-UTC moment from which bookings are fetched for `run` (see module)."""
    last = (SyncRun.objects.filter(cohort=cohort, status=SyncRun.Status.SUCCEEDED)
            .exclude(pk=run.pk).order_by("-started_at").first())
    if last is None:
        return run.started_at - DEFAULT_WINDOW
    return last.started_at - OVERLAP


def run_sync(run_pk, *, client=None, since=None):
    """Run the sync `run_pk` (a running SyncRun) to the end; return the finished SyncRun.

    Fetches the bookings created or updated since `window_start`, applies each
    (`apply_synced_booking`) and records progress, drift and the result on the
    run. A Cal.com error (refused key, other 4xx, 5xx after retries, network)
    ends the run "failed" with the error's sentence; so does an unexpected
    exception, which is also logged and re-raised. `client` (a CalcomClient)
    replaces the one built from the cohort's key and CALCOM_API_URL; `since` (aware
    UTC) replaces the window's start, for a full re-check.
    """
    run = SyncRun.objects.select_related("cohort").get(pk=run_pk)
    if run.status != SyncRun.Status.RUNNING:
        return run
    cohort = run.cohort
    # The rounds are read once for the run (placing each booking in its round reads them),
    # as the webhook view's cached cohort carries them.
    prefetch_related_objects([cohort], "rounds")
    since = since or window_start(cohort, run)
    SyncRun.objects.filter(pk=run.pk).update(window_start=since)
    client = client or calcom_api.CalcomClient(
        cohort.calcom_api_key, base_url=settings.CALCOM_API_URL, timeout=settings.CALCOM_API_TIMEOUT)

    def page_fetched():
        SyncRun.objects.filter(pk=run.pk).update(pages_fetched=F("pages_fetched") + 1)

    checked = changes = 0
    try:
        wanted = cohort_event_types(cohort)
        # Cal.com filters by id only (eventTypeIds, API_V2.md §2); slugs are filtered here.
        ids = {int(v) for v in wanted if v.isdigit()} if all(v.isdigit() for v in wanted) else ()
        bookings = [b for b in client.bookings(since=since, event_type_ids=ids, on_page=page_fetched)
                    if not wanted or calcom_api.holds_event_type(b, wanted)]
        uids = {b["uid"] for b in bookings}
        # Predecessors before their successors, as the webhooks would have come.
        bookings.sort(key=lambda b: (str(b.get("createdAt") or ""), str(b.get("updatedAt") or "")))
        events_, rosters = [], {}
        for booking in bookings:
            # The old half of a reschedule (§7 of API_V2.md): its successor, in this batch,
            # supersedes it through rescheduledFromUid; applying it as a cancel first would
            # clear the schedule for a moment and write two needless status changes.
            moved = calcom_api.moved_to(booking)
            # None: a booking checked and left alone (counted, not applied). A seated booking
            # is one event per seat.
            listed = [None] if moved and moved in uids else calcom_api.booking_events(booking) or [None]
            events_.extend(listed)
            if listed[0] is not None and listed[0].attendee_key:
                # A seated booking: its seats as the API lists them now.
                rosters[listed[0].uid] = (listed[0], {event.attendee_key for event in listed})
        del bookings  # the raw pages are no longer needed: keep the run's memory to its events
        for start in range(0, len(events_), PROGRESS_EVERY):
            batch = [seat_of(event, cohort) if event is not None else None
                     for event in events_[start:start + PROGRESS_EVERY]]
            listed = [event for event in batch if event is not None]
            stored = stored_bookings(cohort, listed)
            changes += _apply_and_record(cohort, run, [(event, stored.get(booking_key(event))) for event in listed])
            checked += len(batch)
            SyncRun.objects.filter(pk=run.pk).update(bookings_checked=checked, changes_made=changes)
        changes += _apply_and_record(cohort, run, missed_seat_cancels(cohort, rosters))
    except calcom_api.CalcomApiError as exc:
        return _finish(run, checked, error=str(exc))
    except Exception as exc:
        logger.exception("Sync #%s of %s failed", run.pk, cohort)
        _finish(run, checked, error=f"Unexpected error: {type(exc).__name__}: {exc}")
        raise
    return _finish(run, checked, changes)


def _finish(run, checked, changes=None, *, error=""):
    # Every change made is a drift row, saved even by a batch an error cut short: after an
    # error they are counted, since the running count missed that batch's.
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED if error else SyncRun.Status.SUCCEEDED, finished_at=timezone.now(),
        bookings_checked=checked, changes_made=run.drift.count() if changes is None else changes,
        error=error[:2000],
    )
    run.refresh_from_db()
    return run


def _apply_and_record(cohort, run, pairs):
    """Apply each (BookingEvent, stored Booking or None) of `pairs`; save the drift; return how many.

    The drift is written in one INSERT, also when an error cuts the pairs short (then
    the error propagates after it): the run records what it fixed before it fails.
    """
    drift = []
    try:
        for event, stored in pairs:
            found = apply_synced_booking(cohort, event, run, stored=stored)
            if found is not None:
                drift.append(found)
    finally:
        SyncDrift.objects.bulk_create(drift)
    return len(drift)


def stored_bookings(cohort, events_):
    """Return {booking_key: Booking} for the stored bookings of `events_` (BookingEvents) in `cohort`.

    One query for a batch, where looking each booking up on its own cost a query per booking.
    """
    uids = {event.uid[:64] for event in events_}
    if not uids:
        return {}
    return {(b.uid, b.attendee_key): b for b in Booking.objects.filter(cohort=cohort, uid__in=uids)}


SEAT_GONE = "No longer among the booking's attendees on Cal.com: the seat was cancelled."


def missed_seat_cancels(cohort, rosters):
    """Return [(BookingEvent, Booking)]: a cancel for each stored seat its booking no longer lists.

    `rosters` maps a seated booking's uid to (one of its seats' events, the set of its
    listed seats' `attendee_key`s). Cancelling one seat removes that attendee from the
    booking (PROTOCOL.md; API_V2.md §4 lists a seated booking's remaining attendees), so
    a seat we hold as accepted or pending that is not listed was cancelled, and its
    BOOKING_CANCELLED webhook was missed. A booking listed without attendees (the key
    may not see them) lists no roster and cancels nothing. One query for all rosters.
    """
    if not rosters:
        return []
    found = []
    seats = (Booking.objects.filter(cohort=cohort, uid__in=list(rosters),
                                    state__in=[Booking.State.ACCEPTED, Booking.State.PENDING])
             .exclude(attendee_key="").order_by("pk"))
    for seat in seats:
        template, listed = rosters[seat.uid]
        if seat.attendee_key in listed:
            continue
        # The removal has no time of its own in the API: it happened before this sync saw it.
        event = replace(template, trigger=events.BOOKING_CANCELLED, attendee_key=seat.attendee_key,
                        email=seat.attendee_key, name="", application_id="", booking_status="CANCELLED",
                        created_at=timezone.now(), reason=SEAT_GONE, cancelled_by="", request_reschedule=False,
                        reschedule_uid="", rescheduled_to_uid="")
        found.append((event, seat))
    return found


def apply_synced_booking(cohort, event, run, *, stored):
    """Apply one BookingEvent from the API; return the SyncDrift it fixed (unsaved), or None.

    `event` is already keyed to its seat (`seat_of`); `stored` is its Booking row as
    read at the start of its batch (`stored_bookings`), or None when there was none.
    Drift is a booking we never heard of, or one whose state, times or place differ
    from what the webhooks left. A matched booking the event would not change is
    left alone (bookings.unchanged_by): nothing read or written, no timeline line.
    Status changes it causes carry the note "Cal.com API sync #<run>". The caller
    saves the drift (`_apply_and_record`, a batch at a time).
    """
    if stored is not None and stored.application_id is not None and unchanged_by(
            stored, event, at=event.created_at or timezone.now(),
            round=round_for_event(cohort, event) if event.trigger in events.NEW_BOOKING_TRIGGERS else None):
        # What the webhooks already told us: applying it again would change nothing but would
        # cost a dozen statements, and put the same booking on the timeline once per sync.
        return None
    if stored is not None:
        # Read again: an earlier booking of this run may have adopted it into an application
        # (its chain), and the drift must compare with the row as it stands. A booking stored
        # at the batch's start cannot appear meanwhile (a run lists each uid once), so a
        # missed booking, the common case, costs no read.
        stored = Booking.objects.filter(pk=stored.pk).first()
    fields = ("state", "start", "end", "application_id", "meeting_url", "location")
    before = {name: getattr(stored, name) for name in fields} if stored is not None else None
    result = apply_booking_event(event, cohort=cohort, note=f"Cal.com API sync #{run.pk}")
    merged = result.booking
    after = {name: getattr(merged, name) for name in fields} if merged is not None else None
    if before == after:
        return None
    application = result.application
    who = application.applicant_name if application else (event.name or event.email)
    if before is None:
        missed = MISSED.get(event.trigger, "booking was missed")
    elif before["state"] != after["state"]:
        missed = MISSED.get(event.trigger, "a change was missed")
    elif before["application_id"] != after["application_id"]:
        missed = "the booking's application changed"
    elif (before["start"], before["end"]) != (after["start"], after["end"]):
        missed = "a time change was missed"
    else:
        missed = "a change of place was missed"
    detail = result.detail.rstrip(".")
    sentence = f"{who}: {missed}; {detail[:1].lower()}{detail[1:]}."
    return SyncDrift(run=run, application=application, booking_uid=event.uid, sentence=sentence[:500])


def due_cohorts(now=None):
    """Return the cohorts with an API key whose last sync started CALCOM_SYNC_INTERVAL ago or more."""
    from applications.models import Cohort

    if settings.CALCOM_SYNC_INTERVAL <= 0:
        return []
    now = now or timezone.now()
    recent = SyncRun.objects.filter(started_at__gt=now - timedelta(seconds=settings.CALCOM_SYNC_INTERVAL))
    return list(Cohort.objects.exclude(calcom_api_key="").filter(archived_at__isnull=True)
                .exclude(sync_runs__in=recent).distinct())
