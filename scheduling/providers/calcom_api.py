"""Cal.com API v2 for reconciliation: list a key's bookings and turn each into a BookingEvent.

HTTP only, no ORM. `CalcomClient` pages through `GET /v2/bookings` with
`cal-api-version: 2024-08-13` (../shared/calcom/API_V2.md §1-§3); `booking_event`
converts one booking object (§4) into the same provider-neutral `BookingEvent` a
webhook produces, so matching and the state machine cannot tell them apart.
Requests go through one `requests.Session` with a timeout on every call and
urllib3 `Retry` (backoff on 429 and 5xx; a 429 waits for `X-RateLimit-Reset-*`, §6).
"""

from dataclasses import replace
from datetime import datetime, timezone

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scheduling.events import (
    BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_REJECTED, BOOKING_REQUESTED, BOOKING_RESCHEDULED,
    BookingEvent,
)

from .calcom import place
from .common import clean, is_url

API_VERSION = "2024-08-13"  # §1: without it the legacy 2024-04-15 shape comes back, silently
# §2: 1-250 (100 is Cal.com's default). The largest page keeps a big sync under the key's
# 120 requests a minute (§6).
PAGE_SIZE = 250
# The longest a rate-limit reset is waited for within one request (Cal.com blocks for 60 s).
MAX_RESET_WAIT = 90
KEY_REFUSED = "The Cal.com API key was refused"


class CalcomApiError(Exception):
    """A request Cal.com answered with an error we cannot retry; the message is for the admin.

    `status` is the HTTP status (or None for a network failure or a bad body).
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class RateLimitRetry(Retry):
    """urllib3 Retry that, on a 429, waits the seconds Cal.com names in `X-RateLimit-Reset-*`.

    Cal.com sets no `Retry-After` (§6); each named limit has its own reset header
    and a request is refused only when all are blocked, so the shortest reset is
    the wait. Capped at MAX_RESET_WAIT seconds.
    """

    def get_retry_after(self, response):
        """Return the seconds to wait before retrying `response`, or None for plain backoff."""
        resets = []
        for name, value in response.headers.items():
            if name.lower().startswith("x-ratelimit-reset"):
                try:
                    resets.append(max(float(value), 0.0))
                except ValueError:
                    continue
        if resets:
            return min(min(resets), MAX_RESET_WAIT)
        return super().get_retry_after(response)


def make_session(api_key, *, retries=4, backoff_factor=1.0):
    """Return a requests.Session authorised with `api_key`, retrying 429/5xx GETs with backoff."""
    session = requests.Session()
    retry = RateLimitRetry(
        total=retries, connect=retries, read=retries, status=retries,
        backoff_factor=backoff_factor, backoff_max=60,
        status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True, raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({
        "Authorization": f"Bearer {api_key}",
        "cal-api-version": API_VERSION,
        "Accept": "application/json",
        "User-Agent": "Cohort-OS reconciliation",
    })
    return session


def _error_message(response):
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or "")[:300]
    except (ValueError, AttributeError):
        return ""


class CalcomClient:
    """A Cal.com API v2 client for one API key.

    `base_url` is e.g. "https://api.cal.com/v2" (settings.CALCOM_API_URL);
    `timeout` is seconds per request (connect and read).
    """

    def __init__(self, api_key, *, base_url, timeout=20.0, session=None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or make_session(api_key)

    def get(self, path, params):
        """GET `path` with `params`; return the decoded JSON object.

        Raises CalcomApiError: "The Cal.com API key was refused" for 401/403, a
        sentence with the status and Cal.com's message for any other error status
        (after the retries for 429/5xx), and for a network failure or a body
        that is not API v2's `{status: "success", data: [...]}`.
        """
        url = f"{self.base_url}{path}"
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CalcomApiError(f"Cal.com's API could not be reached ({type(exc).__name__}).") from exc
        if response.status_code in (401, 403):
            detail = _error_message(response)
            raise CalcomApiError(f"{KEY_REFUSED} (HTTP {response.status_code}"
                                 + (f": {detail}" if detail else "") + "). Enter a valid key in the "
                                 "cohort's settings.", response.status_code)
        if response.status_code >= 400:
            detail = _error_message(response)
            raise CalcomApiError(f"Cal.com's API answered HTTP {response.status_code}"
                                 + (f": {detail}" if detail else "") + ".", response.status_code)
        try:
            data = response.json()
        except ValueError:
            raise CalcomApiError("Cal.com's API answered with a body that is not JSON.") from None
        if not isinstance(data, dict) or data.get("status") != "success" or not isinstance(data.get("data"), list):
            # §9: a cheap check that the pinned version answered (the legacy shape differs).
            raise CalcomApiError("Cal.com's API answered in an unexpected shape (is cal-api-version "
                                 f"{API_VERSION} supported by this Cal.com?).")
        return data

    def bookings(self, *, since, event_type_ids=(), page_size=PAGE_SIZE, on_page=None):
        """Yield every booking object created or updated at or after `since` (aware UTC).

        Two sweeps (§9): `afterCreatedAt` sorted by creation, then `afterUpdatedAt`
        sorted by update, each paged with take/skip until a page is shorter than
        `take` (§3: the pagination counts can overstate). No `status` filter, so
        cancelled, rejected and rescheduled bookings come too. Filtered to
        `event_type_ids` (ints) when given. A uid seen in the first sweep is not
        yielded again. `on_page()` is called after each page. Raises CalcomApiError.
        """
        seen = set()
        stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        for bound, sort in (("afterCreatedAt", "sortCreated"), ("afterUpdatedAt", "sortUpdatedAt")):
            skip = 0
            while True:
                params = {bound: stamp, sort: "asc", "take": page_size, "skip": skip}
                if event_type_ids:
                    params["eventTypeIds"] = ",".join(str(i) for i in sorted(event_type_ids))
                page = self.get("/bookings", params)["data"]
                if on_page is not None:
                    on_page()
                for booking in page:
                    uid = booking.get("uid") if isinstance(booking, dict) else None
                    if uid and uid not in seen:
                        seen.add(uid)
                        yield booking
                if len(page) < page_size:
                    break
                skip += page_size


# --- one booking object → one BookingEvent -------------------------------------------------


def _time(value):
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)


def _text(value):
    return clean(value) if isinstance(value, str) else ""


def _type_id(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) and value.strip().isdigit() else ""


def holds_event_type(booking, wanted):
    """Return True when `booking`'s event type (id or slug) is in `wanted` (a set of lower-case strs)."""
    event_type = booking.get("eventType")
    event_type = event_type if isinstance(event_type, dict) else {}
    type_id = _type_id(event_type.get("id", booking.get("eventTypeId")))
    slug = _text(event_type.get("slug")).lower()
    return bool(type_id and type_id in wanted) or bool(slug and slug in wanted)


def moved_to(booking):
    """Return the uid booking `booking` was rescheduled to ("" when it was not), §7."""
    if _text(booking.get("status")).lower() == "cancelled":
        return _text(booking.get("rescheduledToUid"))
    return ""


def booking_events(booking):
    """Return the BookingEvents that booking object `booking` (a dict, §4) stands for: a list.

    A seated booking (§4's seated shape: each `attendees[]` entry carries a `seatUid`) is
    one event per seat, keyed by that attendee's email (`attendee_key`), as a seated
    webhook's event is, with the seat's own `bookingFieldsResponses` and `metadata`
    (the booking's metadata when the seat has none). Any other booking is one event.
    A booking or seat `booking_event` cannot use gives none.
    """
    attendees = [a for a in booking.get("attendees") or [] if isinstance(a, dict)]
    if not any(a.get("seatUid") for a in attendees):
        event = booking_event(booking)
        return [event] if event is not None else []
    events = []
    for attendee in attendees:
        responses = attendee.get("bookingFieldsResponses")
        # A seat's responses come with the email removed (§4): the attendee's is the booker's.
        responses = {**(responses if isinstance(responses, dict) else {}), "email": attendee.get("email")}
        metadata = attendee.get("metadata") if isinstance(attendee.get("metadata"), dict) else {}
        event = booking_event({**booking, "attendees": [attendee], "bookingFieldsResponses": responses,
                               "metadata": metadata or booking.get("metadata")})
        if event is not None:
            events.append(replace(event, attendee_key=event.email[:254]))
    return events


def booking_event(booking):
    """Return the BookingEvent that booking object `booking` (a dict, §4) stands for, or None.

    The trigger is the one whose webhook would have left the booking in its state:
    accepted → BOOKING_CREATED (BOOKING_RESCHEDULED with `rescheduledFromUid`),
    pending → BOOKING_REQUESTED, cancelled → BOOKING_CANCELLED, rejected →
    BOOKING_REJECTED. `created_at` is the booking's `updatedAt` (else `createdAt`):
    the moment of its last change, just before the webhook about that change was
    sent, so an event a webhook already delivered is older and changes nothing.
    A host's "request reschedule" (§7: cancelled, reason set, no `cancelledByEmail`,
    no `rescheduledToUid`) is marked request_reschedule. `iCalSequence` is not in
    the API (ical_sequence None). Returns None for a booking without uid, times or
    an attendee, or in a state we do not act on (e.g. awaiting_host).
    """
    uid = _text(booking.get("uid"))
    start, end = _time(booking.get("start")), _time(booking.get("end"))
    status = _text(booking.get("status")).lower()
    attendees = [a for a in booking.get("attendees") or [] if isinstance(a, dict)]
    responses = booking.get("bookingFieldsResponses")
    responses = responses if isinstance(responses, dict) else {}
    email = _text(responses.get("email")) or (_text(attendees[0].get("email")) if attendees else "")
    if not uid or len(uid) > 64 or start is None or end is None or not email:
        return None
    rescheduled_from = _text(booking.get("rescheduledFromUid"))
    trigger = {
        "accepted": BOOKING_RESCHEDULED if rescheduled_from else BOOKING_CREATED,
        "pending": BOOKING_REQUESTED,
        "cancelled": BOOKING_CANCELLED,
        "rejected": BOOKING_REJECTED,
    }.get(status)
    if trigger is None:
        return None
    metadata = booking.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    application_id = (_text(metadata.get("application_id")) or _text(responses.get("application-id"))
                      or _text(responses.get("application_id")))
    event_type = booking.get("eventType")
    event_type = event_type if isinstance(event_type, dict) else {}
    # §4: `location` is metadata.videoCallUrl when set, else the booking's location (an address,
    # or an integration name while a booking is pending).
    location = _text(booking.get("location")) or _text(booking.get("meetingUrl"))
    reason = _text(booking.get("cancellationReason")) if status in ("cancelled", "rejected") else ""
    request_reschedule = (
        status == "cancelled" and not moved_to(booking) and bool(reason)
        and "cancelledByEmail" in booking and not _text(booking.get("cancelledByEmail"))
    )
    first = attendees[0] if attendees else {}
    return BookingEvent(
        trigger=trigger,
        created_at=_time(booking.get("updatedAt")) or _time(booking.get("createdAt")),
        uid=uid,
        ical_uid=_text(booking.get("icsUid"))[:200],
        reschedule_uid=rescheduled_from[:64],
        # Set on the old half of a reschedule (§7): moved, not lost.
        rescheduled_to_uid=moved_to(booking)[:64],
        start=start,
        end=end,
        email=email.lower(),
        name=_text(responses.get("name")) or _text(first.get("name")),
        time_zone=_text(first.get("timeZone")),
        meeting_url=location if is_url(location) else "",
        location=place(location),
        event_type=_text(event_type.get("slug")),
        event_type_id=_type_id(event_type.get("id", booking.get("eventTypeId"))),
        # The API has no eventTitle; its title is "<event title> between <host> and <attendee>".
        title=_text(booking.get("title")).split(" between ")[0],
        application_id=application_id[:64],
        booking_status=status.upper(),
        request_reschedule=request_reschedule,
        reason=reason[:2000],
        cancelled_by=_text(booking.get("cancelledByEmail")).lower()[:254],
        rescheduled_by=_text(booking.get("rescheduledByEmail")).lower()[:254],
    )
