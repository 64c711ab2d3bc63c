"""Store → dedupe → process one webhook delivery, for any provider.

The flow for one delivery (PROTOCOL.md §10): `receive_delivery` stores the raw
body with its provider (unique on its sha256 and on its logical key), then
`process_delivery` locks the stored row, parses it with its provider's module and
runs `apply_booking_event` in one transaction, writing the outcome back on the
row. Adding a provider means one parse module in `providers/` and one URL.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from .events import ParseError
from .models import SETTLED, Outcome, WebhookDelivery
from .providers import calcom, calendly, cronofy
from .rows import count_row, insert_or_count, insert_unless_conflict
from .services import Result, apply_booking_event

logger = logging.getLogger(__name__)


# Each provider's module: parse(body) -> BookingEvent, peek_trigger(body) -> str.
PARSERS = {"calcom": calcom, "calendly": calendly, "cronofy": cronofy}


def parser_for(provider):
    """Return the parse module of `provider` ("calcom", "calendly", "cronofy"); KeyError if unknown."""
    return PARSERS[provider]


# A byte-identical copy (same cohort and sha256) is counted on the stored row, which answers
# with its outcome and error.
_BYTE_IDENTICAL = {"counter": "redeliveries", "returning": ("outcome", "error")}


def receive_calcom_delivery(cohort, body):
    """Store and apply a verified Cal.com body: `receive_delivery(cohort, body, provider="calcom")`."""
    return receive_delivery(cohort, body, provider="calcom")


def receive_delivery(cohort, body, *, provider):
    """Store a verified body from `provider` for `cohort`, then apply it exactly once.

    `body` is the raw request bytes, `provider` one of PARSERS' keys. Returns
    (WebhookDelivery, Result). The
    delivery is stored before anything is applied; a body we cannot use is stored
    with outcome "rejected" and a Result whose detail names the problem. A
    byte-identical or re-serialised redelivery of an event already settled gets
    outcome "duplicate" and changes nothing; one whose first copy failed is
    applied now. Raises OperationalError/InterfaceError when the database is
    unreachable (the view spools the verified body and answers 202; a row already
    stored waits for the sweep, scheduling.ingest.sweep_deliveries).
    """
    parser = parser_for(provider)
    event, error = None, ""
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        error = f"Body is {len(body)} bytes; the limit is {settings.WEBHOOK_MAX_BODY_BYTES} (1 MiB)."
    else:
        try:
            event = parser.parse(body)
        except ParseError as exc:
            error = str(exc)
    fields = {
        "cohort": cohort,
        "provider": provider,
        "body": body,
        "sha256": hashlib.sha256(body).hexdigest(),
        "trigger_event": (event.trigger if event else parser.peek_trigger(body))[:64],
        "booking_uid": event.uid[:64] if event else "",
        "event_created_at": event.created_at if event else None,
        "logical_key": (event.logical_key[:200] or None) if event else None,
    }
    if error:
        fields.update(outcome=Outcome.REJECTED, error=error, processed_at=timezone.now())
    delivery = WebhookDelivery(**fields)
    # One statement, committed at once (autocommit): the body is stored before anything is
    # applied, and a byte-identical copy already stored is counted instead (no ERROR, no
    # second round trip); any other conflict takes the slower path.
    stored, row = insert_or_count(delivery, **_BYTE_IDENTICAL, match={"cohort": cohort.pk, "sha256": fields["sha256"]})
    if stored != "inserted":
        original = _stored_copy(cohort, fields["sha256"], row) if stored == "counted" else None
        return _redelivered(fields, event, original)
    if error:
        return delivery, Result(Outcome.REJECTED, error)
    return delivery, process_delivery(delivery, event, cohort=cohort, in_hand=True)


def _count_redelivery(cohort, sha256):
    """Count one more copy of the body stored as (`cohort`, `sha256`); return that delivery, or None.

    One `UPDATE … RETURNING`: the stored row's id, outcome and error, without its body.
    """
    row = count_row(WebhookDelivery, **_BYTE_IDENTICAL, match={"cohort": cohort.pk, "sha256": sha256})
    return _stored_copy(cohort, sha256, row) if row is not None else None


def _stored_copy(cohort, sha256, row):
    """Return the stored delivery (`cohort`, `sha256`) as far as `row` ({"id", "outcome", "error"}) tells."""
    return WebhookDelivery(pk=row["id"], cohort=cohort, sha256=sha256, outcome=row["outcome"], error=row["error"])


ARCHIVED_DETAIL = "The cohort is archived: stored, not applied."


def store_for_archived_cohort(cohort, body, *, provider):
    """Store a verified body of `provider` sent to archived `cohort` without applying it; return the delivery.

    Kept as evidence (outcome "ignored", the detail says why); a byte-identical
    redelivery is counted on the copy already stored, which is returned (its id,
    outcome and error).
    """
    sha256 = hashlib.sha256(body).hexdigest()
    delivery = WebhookDelivery(
        cohort=cohort, body=body, sha256=sha256, provider=provider,
        trigger_event=parser_for(provider).peek_trigger(body)[:64], outcome=Outcome.IGNORED,
        detail=ARCHIVED_DETAIL, processed_at=timezone.now())
    # As receive_delivery stores: one statement, and a copy already stored is counted, not an ERROR.
    stored, row = insert_or_count(delivery, **_BYTE_IDENTICAL, match={"cohort": cohort.pk, "sha256": sha256})
    if stored == "counted":
        return _stored_copy(cohort, sha256, row)
    return delivery if stored == "inserted" else _count_redelivery(cohort, sha256)


def _redelivered(fields, event, original=None):
    """Handle a body whose sha256 or logical key is already stored.

    `original` is the byte-identical copy when the store already counted this one
    against it; otherwise it is looked for (and counted) here.
    """
    cohort = fields["cohort"]
    original = original or _count_redelivery(cohort, fields["sha256"])
    if original is None:
        original = WebhookDelivery.objects.defer("body").get(cohort=cohort, logical_key=fields["logical_key"])
        # A re-serialised copy: keep its bytes too, marked as the duplicate it is (the same
        # re-serialised bytes arriving twice at once store one copy).
        fields.update(logical_key=None, outcome=Outcome.DUPLICATE, duplicate_of=original,
                      detail=f"Same event as delivery #{original.pk}.", processed_at=timezone.now())
        insert_unless_conflict(WebhookDelivery(**fields))
    if original.outcome == Outcome.REJECTED:
        return original, Result(Outcome.REJECTED, original.error)
    if original.outcome in SETTLED:
        return original, Result(Outcome.DUPLICATE, f"Already received as delivery #{original.pk}.")
    # The first copy never finished (crash, lost connection): this redelivery completes it.
    return original, process_delivery(original, event if fields.get("outcome") is None else None,
                                      cohort=cohort)


def process_delivery(delivery, event=None, *, cohort=None, counted=False, in_hand=False):
    """Apply a stored delivery in one transaction and record its outcome on the row.

    `event` is the parsed BookingEvent, parsed again from the stored bytes when
    None (reprocessing); `cohort` the delivery's cohort when the caller has it in
    hand (read with the row otherwise). Returns a Result; a delivery already settled gives
    outcome "duplicate" and is left as it is, except a rejected one, which is
    parsed again (the parser may have learnt since). An unexpected error is recorded as
    outcome "failed" with the error and returned, so the delivery can be retried.
    Each call counts one attempt on the row, unless `counted` (the sweep counted it
    when it claimed the row). `in_hand`: `delivery` is the whole row as this process
    just stored it and `event` its parse, so only what a concurrent copy may have
    changed is read again.
    Database connection errors propagate.
    """
    try:
        with transaction.atomic():
            # The row lock makes concurrent copies of one delivery apply it once. of=("self",):
            # lock the delivery only; locking its cohort too would queue every delivery of the
            # cohort behind this one. The body is read only when it must be parsed again.
            rows = WebhookDelivery.objects.select_for_update(of=("self",))
            if in_hand:
                # Two columns, not the row: a model row costs 0.3 ms more of Python per webhook.
                locked = delivery
                locked.outcome, locked.attempts = rows.filter(pk=delivery.pk).values_list(
                    "outcome", "attempts").get()
            else:
                rows = rows.select_related("cohort") if cohort is None else rows
                locked = (rows if event is None else rows.defer("body")).get(pk=delivery.pk)
            if locked.outcome in SETTLED and locked.outcome != Outcome.REJECTED:
                return Result(Outcome.DUPLICATE, f"Already processed as delivery #{locked.pk}.")
            if cohort is not None:
                locked.cohort = cohort
            if event is None:
                event = parser_for(locked.provider).parse(locked.body_bytes)
            result = apply_booking_event(event, cohort=locked.cohort, delivery=locked)
            locked.outcome, locked.detail, locked.error = result.outcome, result.detail[:500], ""
            locked.application = result.application
            locked.match_rule, locked.attention = result.match_rule, result.attention[:300]
            locked.attempts += 0 if counted else 1
            locked.processed_at = timezone.now()
            locked.save(update_fields=["outcome", "detail", "error", "application", "attempts",
                                       "processed_at", "match_rule", "attention"])
    except ParseError as exc:
        _record_failure(delivery, Outcome.REJECTED, str(exc), counted=counted)
        return Result(Outcome.REJECTED, str(exc))
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("Applying webhook delivery #%s failed", delivery.pk)
        message = f"{type(exc).__name__}: {exc}"
        try:
            _record_failure(delivery, Outcome.FAILED, message, counted=counted)
        except DatabaseError:
            logger.exception("Could not record the failure of delivery #%s", delivery.pk)
        return Result(Outcome.FAILED, message)
    delivery.outcome = result.outcome
    return result


def _record_failure(delivery, outcome, message, *, counted=False):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        outcome=outcome, error=message[:5000], attempts=F("attempts") + (0 if counted else 1),
        processed_at=timezone.now(),
    )
    delivery.outcome = outcome


# --- the spool and the sweep: finishing what an outage interrupted -----------------------


def receive_spooled(spooled):
    """Import one SpooledDelivery (scheduling/spool.py) through its provider's receive path.

    The body was verified when it was spooled, against the secret the cohort had
    then. Returns the outcome (a string) once the delivery row is committed, or
    None when the webhook key names no cohort any more. Raises
    OperationalError/InterfaceError while the database is unreachable.
    """
    from applications.models import Cohort

    parser_for(spooled.provider)  # KeyError for a provider this version does not know
    cohort = Cohort.objects.filter(webhook_key=spooled.webhook_key).first()
    if cohort is None:
        return None
    if cohort.is_archived:  # archived since it was spooled: kept, never applied (as the view does)
        return store_for_archived_cohort(cohort, spooled.body, provider=spooled.provider).outcome
    _delivery, result = receive_delivery(cohort, spooled.body, provider=spooled.provider)
    return result.outcome


def retry_delay(attempts):
    """Return the backoff (a timedelta) before attempt number `attempts` + 1: 1, 2, 4 … 60 minutes."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def due_for_retry(now=None):
    """Return the deliveries the sweep should apply again now (a queryset, oldest first, bodies deferred).

    Those still "received" WEBHOOK_STUCK_AFTER_SECONDS after arrival (an apply that
    was interrupted) and "failed" ones, each only once its backoff
    (`next_attempt_at`) has passed and while it has had fewer than
    WEBHOOK_MAX_ATTEMPTS attempts.
    """
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.WEBHOOK_STUCK_AFTER_SECONDS)
    return (
        WebhookDelivery.objects
        .filter(Q(outcome=Outcome.RECEIVED, received_at__lte=stuck_before) | Q(outcome=Outcome.FAILED))
        .filter(attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("received_at", "pk")
        .defer("body")  # up to 1 MiB each; process_delivery reads it under the row lock
    )


def sweep_deliveries(now=None, limit=500):
    """Apply again up to `limit` stuck or failed deliveries; return {outcome: count}.

    Each delivery is first claimed with a conditional UPDATE on its outcome and
    attempt count (so two sweeps never work on the same row), which counts the
    attempt and schedules the next one (`retry_delay`) before anything runs: an
    apply that kills its worker still uses up an attempt. Stops at the first
    database connection error (the next sweep carries on).
    """
    now = now or timezone.now()
    counts = {}
    for delivery in list(due_for_retry(now)[:limit]):
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, outcome=delivery.outcome, attempts=delivery.attempts,
        ).update(attempts=F("attempts") + 1, next_attempt_at=now + retry_delay(delivery.attempts + 1))
        if not claimed:
            continue  # another sweep (or a redelivery) got there first
        try:
            result = process_delivery(delivery, counted=True)
        except (OperationalError, InterfaceError):
            logger.warning("Database unavailable during the delivery sweep; the next sweep carries on")
            break
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


def delivery_health(cohort=None, now=None):
    """Return {"stuck": n, "failed": n, "gave_up": n}: deliveries waiting to be finished.

    stuck: "received" for longer than WEBHOOK_STUCK_AFTER_SECONDS; failed: failed
    with attempts left; gave_up: failed after WEBHOOK_MAX_ATTEMPTS attempts (an
    admin must look). For one `cohort`, or all.
    """
    now = now or timezone.now()
    deliveries = WebhookDelivery.objects.all() if cohort is None else cohort.deliveries.all()
    stuck_before = now - timedelta(seconds=settings.WEBHOOK_STUCK_AFTER_SECONDS)
    limit = settings.WEBHOOK_MAX_ATTEMPTS
    return deliveries.aggregate(
        stuck=Count("pk", filter=Q(outcome=Outcome.RECEIVED, received_at__lte=stuck_before)),
        failed=Count("pk", filter=Q(outcome=Outcome.FAILED, attempts__lt=limit)),
        gave_up=Count("pk", filter=Q(outcome=Outcome.FAILED, attempts__gte=limit)),
    )
