"""Calendly webhook deliveries (webhook API v2): verify the signature and parse the body.

Pure functions, no ORM. Calendly's terms map onto the neutral BookingEvent
(scheduling/events.py); the facts are in ../shared/calcom/PROTOCOL.md §8.

- One invitee is one booking: `uid` is the invitee's id (the last segment of
  `payload.uri`), so each invitee of a group event is independent, as a Cal.com seat is.
- `invitee.created` is BOOKING_CREATED, or BOOKING_RESCHEDULED when `old_invitee`
  names the invitee it replaces (`reschedule_uid`).
- `invitee.canceled` is BOOKING_CANCELLED; with `rescheduled: true` it is the cancel
  half of a reschedule and names its successor (`new_invitee` → `rescheduled_to_uid`),
  so the pair, in either order, acts as one reschedule.
- `invitee_no_show.created` / `.deleted` mark and unmark the invitee as a no-show.
- The application reference travels in `tracking.utm_content`.
"""

import hashlib
import hmac
import json
import time as clock

from scheduling.events import (
    BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_NO_SHOW_UPDATED, BOOKING_RESCHEDULED, CALENDLY,
    BookingEvent, Organizer, ParseError,
)

from .common import clean, clean_email, is_url, load_object, one_line, path, text, time

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
# Calendly's own sample rejects signatures older than three minutes (§8).
TOLERANCE_SECONDS = 180
INVITEE_CREATED = "invitee.created"
INVITEE_CANCELED = "invitee.canceled"
NO_SHOW_CREATED = "invitee_no_show.created"
NO_SHOW_DELETED = "invitee_no_show.deleted"
MAX_ANSWERS = 50


def sign(body, key, timestamp=None):
    """Return a `Calendly-Webhook-Signature` value for `body` (bytes): "t=<unix s>,v1=<hex>".

    v1 is the lowercase hex HMAC-SHA256, keyed by the signing `key` (str), of
    "<t>.<body>". `timestamp` (int seconds) defaults to now.
    """
    timestamp = int(clock.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_problem(body, header, key, *, now=None):
    """Return why `header` does not sign `body` with `key` (a sentence), or "" when it does.

    Checks the header's shape, the timestamp against `now` (unix seconds, default
    the clock) with a 3-minute tolerance either way, then every v1 value with a
    constant-time compare.
    """
    if not key:
        return "The cohort has no Calendly signing key: set it on the cohort's settings."
    if not header:
        return f"Missing {SIGNATURE_HEADER} header."
    parts = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value.strip())
    stamp = (parts.get("t") or [""])[0]
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12 or not parts.get("v1"):
        return f"{SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex>."
    now = clock.time() if now is None else now
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return (f"{SIGNATURE_HEADER} timestamp is more than {TOLERANCE_SECONDS // 60} minutes "
                "away from now (a stale or replayed delivery).")
    expected = sign(body, key, int(stamp)).partition(",v1=")[2]
    if not any(v.isascii() and hmac.compare_digest(expected, v.lower()) for v in parts["v1"]):
        return f"{SIGNATURE_HEADER} does not match the body."
    return ""


def verify(body, header, key, *, now=None):
    """Return True when `header` is a fresh, valid Calendly signature of `body` with `key`."""
    return not signature_problem(body, header, key, now=now)


def peek_trigger(body):
    """Return the `event` name of `body` (bytes) when readable, else "" (never raises)."""
    try:
        value = json.loads(body.decode("utf-8")).get("event", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return clean(value)[:64] if isinstance(value, str) else ""


def _id(uri):
    """Return the last path segment of a Calendly resource URI ("" when it is not one)."""
    if not isinstance(uri, str):
        return ""
    return clean(uri).rstrip("/").rpartition("/")[2][:64]


def parse(body):
    """Parse a verified Calendly body (bytes) into a BookingEvent.

    Raises ParseError naming the first problem: not a JSON object, no `event`, no
    `payload` object, an invitee event without `payload.uri`, a usable `payload.email`
    or `scheduled_event` times, or a time that is not ISO-8601.
    Other event names (routing forms, event types, contacts) come back with their
    own name as the trigger, which nothing acts on.
    """
    data = load_object(body)
    name = data.get("event")
    if not isinstance(name, str) or not name.strip():
        raise ParseError("Missing event.")
    name = clean(name)[:64]
    created_at = time(data, "created_at", required=False)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise ParseError("Missing payload (an object).")
    common = {"provider": CALENDLY, "created_at": created_at}
    if not created_at:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass")
        common["content_hash"] = hashlib.sha256(canonical).hexdigest()[:32]

    if name in (NO_SHOW_CREATED, NO_SHOW_DELETED):
        # The payload names the invitee (`invitee`), or is the invitee itself (`uri`).
        uid = _id(payload.get("invitee")) or (_id(payload.get("uri")) if "/invitees/" in str(
            payload.get("uri")) else "")
        if not uid:
            raise ParseError("Missing payload.invitee (the invitee's URI).")
        return BookingEvent(trigger=BOOKING_NO_SHOW_UPDATED, uid=uid,
                            no_show_attendees=(("", name == NO_SHOW_CREATED),), **common)
    if name not in (INVITEE_CREATED, INVITEE_CANCELED):
        return BookingEvent(trigger=name, uid=_id(payload.get("uri")), **common)

    uid = _id(payload.get("uri"))
    if not uid:
        raise ParseError("Missing payload.uri (the invitee's URI).")
    email = clean_email(payload.get("email"))
    if not email:
        raise ParseError("No usable invitee email in payload.email.")
    event = payload.get("scheduled_event")
    if not isinstance(event, dict):
        raise ParseError("Missing payload.scheduled_event (an object).")
    where = "payload.scheduled_event"
    start = time(event, "start_time", where, required=True)
    end = time(event, "end_time", where, required=True)
    if end < start:
        raise ParseError(f"{path(where, 'end_time')} is before {path(where, 'start_time')}.")
    full_name = text(payload, "name", "payload", lenient=True) or " ".join(
        filter(None, (text(payload, "first_name", lenient=True), text(payload, "last_name", lenient=True))))
    tracking = payload.get("tracking") if isinstance(payload.get("tracking"), dict) else {}
    cancellation = payload.get("cancellation") if isinstance(payload.get("cancellation"), dict) else {}
    canceled_by = one_line(cancellation.get("canceled_by"), 200)
    canceler = one_line(cancellation.get("canceler_type"), 32)
    if canceled_by and canceler:
        canceled_by = f"{canceled_by} ({canceler})"
    reason = one_line(cancellation.get("reason"), 2000)

    fields = {}
    if name == INVITEE_CREATED:
        old = _id(payload.get("old_invitee"))
        fields.update(trigger=BOOKING_RESCHEDULED if old else BOOKING_CREATED, reschedule_uid=old,
                      booking_status="ACCEPTED")
    elif payload.get("rescheduled") is True:
        # The cancel half of a reschedule: who moved it and why, not a cancellation.
        fields.update(trigger=BOOKING_CANCELLED, booking_status="CANCELLED",
                      rescheduled_to_uid=_id(payload.get("new_invitee")),
                      rescheduled_by=canceled_by, reschedule_reason=reason)
    else:
        fields.update(trigger=BOOKING_CANCELLED, booking_status="CANCELLED", cancelled_by=canceled_by,
                      reason=reason)
    place = event.get("location") if isinstance(event.get("location"), dict) else {}
    join_url = place.get("join_url")
    where_text = place.get("location")
    hosts = event.get("event_memberships") if isinstance(event.get("event_memberships"), list) else []
    host = hosts[0] if hosts and isinstance(hosts[0], dict) else {}
    return BookingEvent(
        uid=uid,
        start=start,
        end=end,
        email=email,
        name=" ".join(full_name.split())[:200],
        phone=one_line(payload.get("text_reminder_number"), 50),
        time_zone=one_line(payload.get("timezone"), 64),
        # join_url is made by Calendly's video integration; the invitee cannot set it.
        meeting_url=clean(join_url) if is_url(join_url) else "",
        location="" if is_url(where_text) else one_line(where_text, 300),
        reschedule_url=clean(payload["reschedule_url"]) if is_url(payload.get("reschedule_url")) else "",
        cancel_url=clean(payload["cancel_url"]) if is_url(payload.get("cancel_url")) else "",
        organizer=Organizer(name=one_line(host.get("user_name"), 200),
                            email=clean_email(host.get("user_email"))),
        title=one_line(event.get("name"), 200),
        application_id=one_line(tracking.get("utm_content"), 200),
        responses=_answers(payload.get("questions_and_answers")),
        **fields,
        **common,
    )


def _answers(items):
    """Return ((question, answer), ...) from `questions_and_answers`, in `position` order."""
    if not isinstance(items, list):
        return ()
    rows = [i for i in items[:MAX_ANSWERS] if isinstance(i, dict)]
    rows.sort(key=lambda i: i.get("position") if isinstance(i.get("position"), int) else 0)
    return tuple((one_line(i.get("question"), 200), one_line(i.get("answer"), 1000))
                 for i in rows if one_line(i.get("answer"), 1000))
