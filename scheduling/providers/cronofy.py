"""Cronofy Scheduler push notifications: verify the signature and parse the body.

Pure functions, no ORM. The facts are in ../shared/calcom/PROTOCOL.md §9, which
confirms only the envelope, `scheduling_request_time_chosen` and where
`correlation_id` comes back. Everything else is read leniently: a body we cannot
place is stored and answered without error (outcome "ignored"), never a 500.

- One scheduling request is one booking: `uid` is `scheduling_request_id`, so a
  later `time_chosen` for the same request moves the same booking.
- The application reference is the Scheduler link's `correlation_id`.
"""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

from scheduling.events import BOOKING_CANCELLED, BOOKING_CREATED, CRONOFY, BookingEvent, ParseError

from .common import (
    bounded_int, clean, clean_email, is_url, load_object, one_line, parse_time, text, time,
)

SIGNATURE_HEADER = "Cronofy-HMAC-SHA256"
TIME_CHOSEN = "scheduling_request_time_chosen"
# Types that end a request [unverified: the page lists more types than the notes confirm];
# matched on these words so that a spelling we have not seen still cancels.
ENDING_WORDS = ("cancel", "declin")


def sign(body, secret):
    """Return the `Cronofy-HMAC-SHA256` value for `body` (bytes): base64 of HMAC-SHA256 keyed by `secret`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body, header, secret):
    """Return True when `header` holds a valid signature of `body` with the client `secret`.

    Several comma-separated values are accepted (any may match), as during a
    secret rotation; each is compared in constant time.
    """
    if not header or not secret or not header.isascii():
        return False
    expected = sign(body, secret)
    return any(hmac.compare_digest(expected, value.strip()) for value in header.split(","))


def peek_trigger(body):
    """Return `notification.type` of `body` (bytes) when readable, else "" (never raises)."""
    try:
        value = json.loads(body.decode("utf-8")).get("notification", {}).get("type", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return clean(value)[:64] if isinstance(value, str) else ""


def _dig(obj, *keys):
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _when(value):
    """Return a Cronofy time (an ISO string, or `{time, tzid}`) as aware UTC, None if unreadable."""
    if isinstance(value, dict):
        value = value.get("time")
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        return None


def parse(body):
    """Parse a verified Cronofy Scheduler notification (bytes) into a BookingEvent.

    Raises ParseError for a body that is not a JSON object or has no
    `notification.type`, and for a `time_chosen` or ending type without
    `scheduling_request.scheduling_request_id`, or with neither a recipient email
    nor a `correlation_id` to match it by. Unknown types come back with their own
    name as the trigger, which nothing acts on. The chosen time is read from
    `scheduling_request.event.start`/`end` (or `slot`); when the body has none the
    booking is recorded without one.
    """
    data = load_object(body)
    notification = data.get("notification")
    kind = notification.get("type") if isinstance(notification, dict) else None
    if not isinstance(kind, str) or not kind.strip():
        raise ParseError("Missing notification.type.")
    kind = clean(kind)[:64]
    created_at = time(notification, "triggered_at", "notification", required=False)
    request = data.get("scheduling_request")
    request = request if isinstance(request, dict) else {}
    common = {"provider": CRONOFY, "created_at": created_at}
    if not created_at:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass")
        common["content_hash"] = hashlib.sha256(canonical).hexdigest()[:32]
    uid = text(request, "scheduling_request_id", "scheduling_request", lenient=True)[:64]
    if kind == TIME_CHOSEN:
        trigger = BOOKING_CREATED
    elif any(word in kind for word in ENDING_WORDS):
        trigger = BOOKING_CANCELLED
    else:
        return BookingEvent(trigger=kind, uid=uid, **common)
    if not uid:
        raise ParseError("Missing scheduling_request.scheduling_request_id.")

    recipients = request.get("recipients") if isinstance(request.get("recipients"), list) else []
    first = recipients[0] if recipients and isinstance(recipients[0], dict) else {}
    event = request.get("event") if isinstance(request.get("event"), dict) else {}
    scheduler = _dig(event, "metadata", "scheduler")
    scheduler = scheduler if isinstance(scheduler, dict) else {}
    ref = one_line(scheduler.get("correlation_id"), 200)
    email = clean_email(first.get("email"))
    if not email and not ref:
        raise ParseError("No recipient email in scheduling_request.recipients[0].email and no "
                         "scheduling_request.event.metadata.scheduler.correlation_id.")
    slot = request.get("slot") if isinstance(request.get("slot"), dict) else {}
    start = _when(event.get("start")) or _when(slot.get("start"))
    end = _when(event.get("end")) or _when(slot.get("end"))
    minutes = bounded_int(request.get("duration"), "minutes", "scheduling_request.duration",
                          low=1, high=7 * 24 * 60) if isinstance(request.get("duration"), dict) else None
    if start and not end and minutes:
        end = start + timedelta(minutes=minutes)
    if start and end and end < start:
        raise ParseError("scheduling_request.event.end is before scheduling_request.event.start.")
    join_url = _dig(event, "conferencing", "join_url")
    location = _dig(event, "location", "description")
    answers = tuple(
        (key.partition(".")[2][:200] or key[:200], one_line(value, 1000))
        for key, value in list(scheduler.items())[:50]
        if isinstance(key, str) and key.startswith("captured_data.") and one_line(value, 1000)
    )
    return BookingEvent(
        trigger=trigger,
        uid=uid,
        start=start,
        end=end,
        email=email,
        name=one_line(first.get("display_name"), 200),
        meeting_url=clean(join_url) if is_url(join_url) else "",
        location="" if is_url(location) else one_line(location, 300),
        title=one_line(event.get("summary") or request.get("summary"), 200),
        application_id=ref,
        booking_status="ACCEPTED" if trigger == BOOKING_CREATED else "CANCELLED",
        responses=answers,
        **common,
    )
