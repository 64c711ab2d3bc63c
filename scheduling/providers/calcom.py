"""Cal.com webhook deliveries: verify the signature and parse the body.

Pure functions, no ORM: `verify(body, signature, secret)` and `parse(body)`.
Provider JSON stops here; the rest of the app sees one frozen `BookingEvent`
(scheduling/events.py). Field sources and quirks are in ../shared/calcom/PROTOCOL.md
(section numbers below).
"""

import hashlib
import hmac
import json
from datetime import datetime, timezone
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from scheduling.events import (  # noqa: F401  (re-exported: callers name triggers as calcom.X)
    BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_REJECTED, BOOKING_REQUESTED, BOOKING_RESCHEDULED,
    BOOKING_TRIGGERS, MEETING_ENDED, NEW_BOOKING_TRIGGERS, PING, BookingEvent, ParseError,
)

SIGNATURE_HEADER = "X-Cal-Signature-256"
NO_SECRET = "no-secret-provided"  # what Cal.com sends when the webhook has no secret (§5)

_url = URLValidator(schemes=["http", "https"])


def sign(body, secret):
    """Return the lowercase hex HMAC-SHA256 of `body` (bytes) keyed by `secret` (str), as Cal.com does."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body, signature, secret):
    """Return True when `signature` (the X-Cal-Signature-256 value) signs `body` with `secret`.

    `body` is the exact raw bytes received; `signature` may be None. An empty
    value, or Cal.com's "no-secret-provided" placeholder, never verifies.
    """
    if not signature or not secret or signature == NO_SECRET or not signature.isascii():
        return False
    return hmac.compare_digest(sign(body, secret), signature.strip().lower())


def peek_trigger(body):
    """Return the `triggerEvent` of `body` (bytes) when it is readable, else "" (never raises)."""
    try:
        value = json.loads(body.decode("utf-8")).get("triggerEvent", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return _clean(value) if isinstance(value, str) else ""


def parse(body):
    """Parse a verified Cal.com body (bytes) into a BookingEvent.

    Accepts the `{triggerEvent, createdAt, payload}` envelope and the legacy flat
    MEETING_* shape (§1); times with `Z`, `+00:00` or fractional seconds.
    Raises ParseError naming the first problem: not JSON, not an object, no
    `triggerEvent`, no `payload`, a booking trigger without uid, times or a usable
    email, a field of the wrong type, or an unparseable time.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ParseError("Body is not UTF-8 encoded JSON.") from None
    except RecursionError:
        raise ParseError("Body is nested too deeply.") from None
    except ValueError as exc:
        raise ParseError(f"Body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ParseError(f"Body must be a JSON object, not {_json_type(data)}.")

    trigger = data.get("triggerEvent")
    if trigger is None or trigger == "":
        raise ParseError("Missing triggerEvent.")
    if not isinstance(trigger, str):
        raise ParseError("triggerEvent must be a string.")
    trigger = _clean(trigger)[:64]

    created_at = _time(data, "createdAt", required=False)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate escape must not turn a rejectable body into a crash.
    canonical_bytes = canonical.encode("utf-8", "surrogatepass")
    content_hash = "" if created_at else hashlib.sha256(canonical_bytes).hexdigest()[:32]
    if "payload" in data:
        payload, where = data["payload"], "payload"
    elif trigger.startswith("MEETING_"):
        # Legacy cron path: the booking row sits flat at the top level (§1).
        payload, where = data, ""
    else:
        raise ParseError("Missing payload.")
    if not isinstance(payload, dict):
        raise ParseError(f"payload must be a JSON object, not {_json_type(payload)}.")

    if trigger not in BOOKING_TRIGGERS:
        # PING and triggers we do not act on: keep what identifies them, nothing more.
        # BOOKING_NO_SHOW_UPDATED names its booking `bookingUid` (§5).
        uid = _text(payload, "uid", where, lenient=True) or _text(
            payload, "bookingUid", where, lenient=True)
        return BookingEvent(trigger=trigger, created_at=created_at, uid=uid[:64],
                            content_hash=content_hash)

    uid = _text(payload, "uid", where)
    if not uid:
        raise ParseError(f"Missing {_path(where, 'uid')}.")
    if len(uid) > 64:
        raise ParseError(f"{_path(where, 'uid')} is longer than 64 characters.")
    start = _time(payload, "startTime", where, required=True)
    end = _time(payload, "endTime", where, required=True)
    if end < start:
        raise ParseError(f"{_path(where, 'endTime')} is before {_path(where, 'startTime')}.")
    email, name, time_zone = _booker(payload, where)
    sequence = _sequence(payload.get("iCalSequence"))

    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    reschedule_uid = _text(payload, "rescheduleUid", where)
    if not reschedule_uid and not where:
        reschedule_uid = _text(payload, "fromReschedule", where)
    reason = _text(payload, "cancellationReason", where, lenient=True) or _text(
        payload, "rejectionReason", where, lenient=True
    )
    return BookingEvent(
        trigger=trigger,
        created_at=created_at,
        uid=uid,
        ical_uid=_text(payload, "iCalUID", where),
        ical_sequence=sequence,
        reschedule_uid=reschedule_uid,
        start=start,
        end=end,
        email=email,
        name=name,
        time_zone=time_zone,
        meeting_url=_meeting_url(payload, metadata),
        event_type=_text(payload, "type", where, lenient=True),
        event_type_id=_event_type_id(payload.get("eventTypeId")),
        title=_text(payload, "eventTitle", where, lenient=True)
        or _text(payload, "title", where, lenient=True),
        application_id=_application_id(payload, metadata),
        booking_status=_text(payload, "status", where, lenient=True).upper(),
        request_reschedule=payload.get("requestReschedule") is True,
        reason=reason[:2000],
        content_hash=content_hash,
        **_manage_links(payload, uid),
    )


def _json_type(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _path(where, key):
    return f"{where}.{key}" if where else key


def _clean(text):
    """Return `text` stripped, without NUL characters and with lone surrogates as U+FFFD.

    PostgreSQL text holds neither. JSON can escape a lone surrogate (`\\ud83d`, half an
    emoji cut by a JavaScript slice); kept as is, the row could not be stored at all.
    """
    text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.strip()


def _sequence(value):
    """Return iCalSequence as an int; a digit string counts, anything else is ignored (None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(obj, key, where="", *, lenient=False):
    """Return obj[key] stripped, "" when absent or null; a non-string raises unless lenient."""
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and lenient:
        return str(value)
    if not isinstance(value, str):
        if lenient:
            return ""
        raise ParseError(f"{_path(where, key)} must be a string, not {_json_type(value)}.")
    return _clean(value)


def parse_time(value):
    """Return the ISO-8601 string `value` as an aware UTC datetime; raise ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed.astimezone(timezone.utc)


def _time(obj, key, where="", *, required):
    if key not in obj or obj[key] is None:
        if required:
            raise ParseError(f"Missing {_path(where, key)}.")
        return None
    try:
        return parse_time(obj[key])
    except (ValueError, OverflowError):
        shown = json.dumps(obj[key])[:60]
        raise ParseError(
            f"{_path(where, key)} is not an ISO-8601 time with a UTC offset: {shown}."
        ) from None


def _response_value(payload, field):
    responses = payload.get("responses")
    if not isinstance(responses, dict):
        return None
    entry = responses.get(field)
    # Newer bookings wrap answers as {label, value, isHidden}; some paths store the bare value.
    return entry.get("value") if isinstance(entry, dict) else entry


def _clean_email(value):
    if not isinstance(value, str):
        return ""
    value = _clean(value).lower()
    if len(value) > 254:  # RFC 5321's limit, and our column's
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


def _booker(payload, where):
    """Return (email, name, time_zone) of the booker; raise ParseError without a usable email."""
    attendees = payload.get("attendees")
    first = attendees[0] if isinstance(attendees, list) and attendees else {}
    first = first if isinstance(first, dict) else {}
    email = _clean_email(_response_value(payload, "email")) or _clean_email(first.get("email"))
    if not email:
        raise ParseError(
            f"No usable booker email in {_path(where, 'responses.email.value')} "
            f"or {_path(where, 'attendees[0].email')}."
        )
    name = _response_value(payload, "name")
    if isinstance(name, dict):  # the split name field: {firstName, lastName}
        name = " ".join(str(name.get(k) or "") for k in ("firstName", "lastName"))
    if not isinstance(name, str) or not name.strip():
        name = first.get("name") if isinstance(first.get("name"), str) else ""
    time_zone = first.get("timeZone") if isinstance(first.get("timeZone"), str) else ""
    return email, " ".join(_clean(name).split())[:200], _clean(time_zone)[:64]


def _is_url(value):
    if not isinstance(value, str) or len(value) > 500:
        return False
    try:
        _url(value.strip())
    except ValidationError:
        return False
    return True


def _meeting_url(payload, metadata):
    video = payload.get("videoCallData")
    candidates = [
        metadata.get("videoCallUrl"),
        video.get("url") if isinstance(video, dict) else None,
        payload.get("location"),
    ]
    return next((_clean(c) for c in candidates if _is_url(c)), "")


# Where a booker manages a Cal.com booking when the payload names no `bookerUrl` (Cal.com's
# WEBAPP_URL for cal.com itself).
DEFAULT_BOOKER_URL = "https://app.cal.com"


def _manage_links(payload, uid):
    """Return {reschedule_url, cancel_url}: the booker's own pages for booking `uid`.

    Cal.com builds them as `<bookerUrl>/reschedule/<uid>` and
    `<bookerUrl>/booking/<uid>?cancel=true` (packages/lib/CalEventParser.ts,
    getRescheduleLink / getCancelLink); `bookerUrl` is the payload's (§2, "present when
    set"). An event type with `disableRescheduling` / `disableCancelling` gets no link.
    """
    booker = payload.get("bookerUrl")
    booker = _clean(booker).rstrip("/") if _is_url(booker) else DEFAULT_BOOKER_URL
    quoted = quote(uid, safe="")
    return {
        "reschedule_url": "" if payload.get("disableRescheduling") is True
        else f"{booker}/reschedule/{quoted}",
        "cancel_url": "" if payload.get("disableCancelling") is True
        else f"{booker}/booking/{quoted}?cancel=true&allRemainingBookings=false",
    }


def _event_type_id(value):
    """Return `payload.eventTypeId` (an int on the wire) as a string of digits, or ""."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return str(value).strip()[:20]
    return ""


def _application_id(payload, metadata):
    for value in (
        metadata.get("application_id"),
        _response_value(payload, "application-id"),
        _response_value(payload, "application_id"),
    ):
        if isinstance(value, (str, int)) and not isinstance(value, bool) and _clean(str(value)):
            return _clean(str(value))[:64]
    return ""
