"""Cal.com webhook deliveries: verify the signature and parse the body.

Pure functions, no ORM: `verify(body, signature, secret)` and `parse(body)`.
Provider JSON stops here; the rest of the app sees one frozen `BookingEvent`
(scheduling/events.py). Field sources and quirks are in ../shared/calcom/PROTOCOL.md
(section numbers below).
"""

import hashlib
import hmac
import json
from urllib.parse import quote, urlsplit

from scheduling.events import (  # noqa: F401  (re-exported: callers name triggers as calcom.X)
    AFTER_GUESTS_CAL_VIDEO_NO_SHOW, AFTER_HOSTS_CAL_VIDEO_NO_SHOW, BOOKING_CANCELLED,
    BOOKING_CREATED, BOOKING_LOCATION_UPDATED, BOOKING_NO_SHOW_UPDATED, BOOKING_REASSIGNED,
    BOOKING_REJECTED, BOOKING_REQUESTED, BOOKING_RESCHEDULED, BOOKING_TRIGGERS, CALCOM,
    DETAIL_TRIGGERS, MAX_INT, MEETING_ENDED, NEW_BOOKING_TRIGGERS, PING, BookingEvent, Organizer,
    ParseError,
)

from .common import (
    bounded_int, clean, clean_email, is_url, json_type, load_object, one_line, parse_time,  # noqa: F401
    path, text, time,
)

SIGNATURE_HEADER = "X-Cal-Signature-256"
NO_SECRET = "no-secret-provided"  # what Cal.com sends when the webhook has no secret (§5)

# Hosts of the links each video integration makes (the `location` value names the
# integration, §2). A booker-set metadata.videoCallUrl is believed only on these hosts.
# Cal Video's links live on the Cal.com instance itself: its bookerUrl's host is added.
INTEGRATION_HOSTS = {
    "integrations:daily": ("cal.com", "cal.video"),
    "integrations:google:meet": ("meet.google.com",),
    "integrations:zoom": ("zoom.us", "zoom.com"),
    "integrations:office365_video": ("teams.microsoft.com", "teams.live.com"),
    "integrations:msteams": ("teams.microsoft.com", "teams.live.com"),
    "integrations:webex_video": ("webex.com",),
    "integrations:whereby_video": ("whereby.com",),
    "integrations:jitsi": ("meet.jit.si",),
    "integrations:huddle01": ("huddle01.com",),
    "integrations:tandem": ("tandem.chat",),
}
MAX_RESPONSES = 50


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
    return clean(value) if isinstance(value, str) else ""


def parse(body):
    """Parse a verified Cal.com body (bytes) into a BookingEvent.

    Accepts the `{triggerEvent, createdAt, payload}` envelope and the legacy flat
    MEETING_* shape (§1); times with `Z`, `+00:00` or fractional seconds.
    Raises ParseError naming the first problem: not JSON, not an object, no
    `triggerEvent`, no `payload`, a booking trigger without uid, times or a usable
    email, a field of the wrong type, an integer out of range, or an unparseable time.
    """
    data = load_object(body)
    trigger = data.get("triggerEvent")
    if trigger is None or trigger == "":
        raise ParseError("Missing triggerEvent.")
    if not isinstance(trigger, str):
        raise ParseError("triggerEvent must be a string.")
    trigger = clean(trigger)[:64]

    created_at = time(data, "createdAt", required=False)
    content_hash = ""
    if not created_at:
        # Only a body without createdAt needs its content hash (logical_key); re-serialising
        # every body for it cost a quarter of the parse, paid again by every redelivery.
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        # surrogatepass: a lone surrogate escape must not turn a rejectable body into a crash.
        content_hash = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if "payload" in data:
        payload, where = data["payload"], "payload"
    elif trigger.startswith("MEETING_"):
        # Legacy cron path: the booking row sits flat at the top level (§1).
        payload, where = data, ""
    else:
        raise ParseError("Missing payload.")
    if not isinstance(payload, dict):
        raise ParseError(f"payload must be a JSON object, not {json_type(payload)}.")
    common = {"trigger": trigger, "provider": CALCOM, "created_at": created_at,
              "content_hash": content_hash}

    if trigger in DETAIL_TRIGGERS:
        return _detail_event(payload, where, common)
    if trigger not in BOOKING_TRIGGERS:
        # PING and triggers we do not act on: keep what identifies them, nothing more.
        uid = text(payload, "uid", where, lenient=True) or text(
            payload, "bookingUid", where, lenient=True)
        return BookingEvent(uid=uid[:64], **common)

    uid = text(payload, "uid", where)
    if not uid:
        raise ParseError(f"Missing {path(where, 'uid')}.")
    if len(uid) > 64:
        raise ParseError(f"{path(where, 'uid')} is longer than 64 characters.")
    start = time(payload, "startTime", where, required=True)
    end = time(payload, "endTime", where, required=True)
    if end < start:
        raise ParseError(f"{path(where, 'endTime')} is before {path(where, 'startTime')}.")
    seated = bounded_int(payload, "seatsPerTimeSlot", where, lenient=True) not in (None, 0)
    email, name, time_zone, phone = _booker(payload, where, seated=seated)
    sequence = bounded_int(payload, "iCalSequence", where, lenient=True)

    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    reschedule_uid = text(payload, "rescheduleUid", where)
    if not reschedule_uid and not where:
        reschedule_uid = text(payload, "fromReschedule", where)
    reason = text(payload, "cancellationReason", where, lenient=True) or text(
        payload, "rejectionReason", where, lenient=True
    )
    moved = trigger == BOOKING_RESCHEDULED or (trigger == BOOKING_REQUESTED and reschedule_uid)
    return BookingEvent(
        uid=uid,
        attendee_key=email if seated else "",
        ical_uid=text(payload, "iCalUID", where)[:200],
        ical_sequence=sequence,
        reschedule_uid=reschedule_uid[:64],
        start=start,
        end=end,
        email=email,
        name=name,
        phone=phone,
        time_zone=time_zone,
        meeting_url=meeting_url(payload, metadata),
        location=place(payload.get("location")),
        **_host(payload),
        event_type=text(payload, "type", where, lenient=True, limit=200),
        event_type_id=_event_type_id(payload.get("eventTypeId")),
        title=(text(payload, "eventTitle", where, lenient=True)
               or text(payload, "title", where, lenient=True))[:200],
        application_id=_application_id(payload, metadata),
        booking_status=text(payload, "status", where, lenient=True).upper()[:16],
        request_reschedule=payload.get("requestReschedule") is True,
        reason=reason[:2000],
        reschedule_reason=one_line(_response_value(payload, "rescheduleReason"), 2000) if moved else "",
        rescheduled_by=text(payload, "rescheduledBy", where, lenient=True, limit=254),
        cancelled_by=text(payload, "cancelledBy", where, lenient=True, limit=254),
        responses=_responses(payload.get("userFieldsResponses")),
        **_manage_links(payload, uid),
        **common,
    )


def _detail_event(payload, where, common):
    """Parse BOOKING_LOCATION_UPDATED, BOOKING_REASSIGNED and the no-show triggers.

    Their shapes are not in the protocol notes [unverified], so only the booking's
    uid (`uid` or `bookingUid`, §5) is required and every other field is read leniently.
    """
    uid = text(payload, "uid", where, lenient=True) or text(payload, "bookingUid", where, lenient=True)
    if not uid:
        raise ParseError(f"Missing {path(where, 'uid')} (or {path(where, 'bookingUid')}).")
    if len(uid) > 64:
        raise ParseError(f"{path(where, 'uid')} is longer than 64 characters.")
    trigger = common["trigger"]
    fields = {"uid": uid}
    if trigger == BOOKING_LOCATION_UPDATED:
        metadata = payload.get("metadata")
        fields.update(meeting_url=meeting_url(payload, metadata if isinstance(metadata, dict) else {}),
                      location=place(payload.get("location")))
    elif trigger == BOOKING_REASSIGNED:
        fields.update(_host(payload))
    elif trigger == BOOKING_NO_SHOW_UPDATED:
        marks = []
        attendees = payload.get("attendees")
        for attendee in attendees if isinstance(attendees, list) else []:
            if isinstance(attendee, dict) and isinstance(attendee.get("noShow"), bool):
                email = clean_email(attendee.get("email"))
                if email:
                    marks.append((email, attendee["noShow"]))
        fields["no_show_attendees"] = tuple(marks[:MAX_RESPONSES])
        if isinstance(payload.get("noShowHost"), bool):
            fields["no_show_host"] = payload["noShowHost"]
    elif trigger == AFTER_HOSTS_CAL_VIDEO_NO_SHOW:
        fields["no_show_host"] = True
    # Times, when present, are read for display only; a malformed one is not worth a 400 here.
    for key, name in (("startTime", "start"), ("endTime", "end")):
        try:
            fields[name] = parse_time(payload.get(key))
        except (ValueError, OverflowError):
            pass
    return BookingEvent(**fields, **common)


def _response_value(payload, field):
    responses = payload.get("responses")
    if not isinstance(responses, dict):
        return None
    entry = responses.get(field)
    # Newer bookings wrap answers as {label, value, isHidden}; some paths store the bare value.
    return entry.get("value") if isinstance(entry, dict) else entry


def _booker(payload, where, *, seated=False):
    """Return (email, name, time_zone, phone) of the booker; raise ParseError without a usable email.

    A seated booking's cancel carries the booking's (first booker's) `responses` but only
    the cancelling attendee in `attendees` (§4): with one attendee listed, that one is the seat.
    """
    attendees = payload.get("attendees")
    first = attendees[0] if isinstance(attendees, list) and attendees else {}
    first = first if isinstance(first, dict) else {}
    seat = seated and isinstance(attendees, list) and len(attendees) == 1
    email = clean_email(_response_value(payload, "email"))
    if seat or not email:
        email = clean_email(first.get("email")) or email
    if not email:
        raise ParseError(
            f"No usable booker email in {path(where, 'responses.email.value')} "
            f"or {path(where, 'attendees[0].email')}."
        )
    name = _response_value(payload, "name")
    if isinstance(name, dict):  # the split name field: {firstName, lastName}
        name = " ".join(str(name.get(k) or "") for k in ("firstName", "lastName"))
    listed = first.get("name") if isinstance(first.get("name"), str) else ""
    if seat or not isinstance(name, str) or not name.strip():
        name = listed.strip() or (name if isinstance(name, str) else "")
    time_zone = first.get("timeZone") if isinstance(first.get("timeZone"), str) else ""
    phone = one_line(first.get("phoneNumber"), 50) or one_line(
        _response_value(payload, "attendeePhoneNumber"), 50)
    return email, " ".join(clean(name).split())[:200], clean(time_zone)[:64], phone


def _host(payload):
    """Return the interviewer fields: organizer, team, scheduling_type, assignment_reason (§2)."""
    organizer = payload.get("organizer")
    organizer = organizer if isinstance(organizer, dict) else {}
    team = payload.get("team")
    reason = payload.get("assignmentReason")
    if isinstance(reason, list):
        reason = reason[-1] if reason else None  # the newest reason is last
    if isinstance(reason, dict):
        reason = reason.get("reasonString") or reason.get("reasonEnum") or reason.get("category")
    return {
        "organizer": Organizer(
            name=one_line(organizer.get("name"), 200),
            email=clean_email(organizer.get("email")),
            time_zone=one_line(organizer.get("timeZone"), 64),
        ),
        "team": one_line(team.get("name"), 200) if isinstance(team, dict) else "",
        "scheduling_type": one_line(payload.get("schedulingType"), 32),
        "assignment_reason": one_line(reason, 500),
    }


def place(location):
    """Return the raw `location` (§2) when it names a place, "" for a link or an integration."""
    if not isinstance(location, str):
        return ""
    location = " ".join(clean(location).split())
    if not location or is_url(location) or location.startswith("integrations:"):
        return ""
    return location[:300]


def _host_of(url):
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


def _on_hosts(url, hosts):
    host = _host_of(url)
    return bool(host) and any(host == h or host.endswith("." + h) for h in hosts)


def meeting_url(payload, metadata):
    """Return the interview's meeting link, never one the booker chose (issue 11, §2).

    Cal.com builds `metadata` as `{videoCallUrl, ...the booker's metadata}`, so a booking
    link with `?metadata[videoCallUrl]=…` sets it. The links Cal.com makes itself
    come first: `videoCallData.url`, then a URL `location` (an organizer-set link or a
    video integration's). `metadata.videoCallUrl` counts only when it equals one of
    those, or when there is none and its host belongs to the integration named by
    `location` (Google Meet's link is only in metadata, §2).
    """
    video = payload.get("videoCallData")
    generated = [
        clean(c) for c in (video.get("url") if isinstance(video, dict) else None,
                           payload.get("location"))
        if is_url(c)
    ]
    claimed = metadata.get("videoCallUrl")
    claimed = clean(claimed) if is_url(claimed) else ""
    if generated:
        return claimed if claimed in generated else generated[0]
    if not claimed:
        return ""
    location = payload.get("location")
    hosts = INTEGRATION_HOSTS.get(clean(location) if isinstance(location, str) else "", ())
    if location == "integrations:daily" and is_url(payload.get("bookerUrl")):
        hosts = (*hosts, _host_of(payload["bookerUrl"]))
    return claimed if _on_hosts(claimed, hosts) else ""


def _responses(answers):
    """Return ((label, answer), ...) from `userFieldsResponses` (§2), empty answers left out."""
    if not isinstance(answers, dict):
        return ()
    kept = []
    for key, entry in list(answers.items())[:MAX_RESPONSES]:
        label = entry.get("label") if isinstance(entry, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else entry
        answer = one_line(value, 1000)
        if answer:
            kept.append((one_line(label, 200) or one_line(key, 200), answer))
    return tuple(kept)


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
    booker = clean(booker).rstrip("/") if is_url(booker) else DEFAULT_BOOKER_URL
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
        if isinstance(value, (str, int)) and not isinstance(value, bool) and clean(str(value)):
            return clean(str(value))[:64]
    return ""
