"""The provider-neutral booking event: what every provider's parser produces.

Provider JSON stops in `scheduling/providers/`; matching, booking merge and the state
machine see only the frozen `BookingEvent` below, with aware-UTC datetimes. Trigger
names are Cal.com's (`triggerEvent`, PROTOCOL.md §1), the vocabulary every other
provider's events are mapped onto.
"""

from dataclasses import dataclass
from datetime import datetime

BOOKING_CREATED = "BOOKING_CREATED"
BOOKING_RESCHEDULED = "BOOKING_RESCHEDULED"
BOOKING_REQUESTED = "BOOKING_REQUESTED"
BOOKING_CANCELLED = "BOOKING_CANCELLED"
BOOKING_REJECTED = "BOOKING_REJECTED"
MEETING_ENDED = "MEETING_ENDED"
PING = "PING"

# Triggers that change a booking and so need a uid, times and the booker's email.
BOOKING_TRIGGERS = frozenset(
    {BOOKING_CREATED, BOOKING_RESCHEDULED, BOOKING_REQUESTED, BOOKING_CANCELLED,
     BOOKING_REJECTED, MEETING_ENDED}
)
# Triggers that can bring a booking we have never seen (so may make an orphaned interview).
NEW_BOOKING_TRIGGERS = frozenset({BOOKING_CREATED, BOOKING_RESCHEDULED, BOOKING_REQUESTED})


class ParseError(ValueError):
    """A verified body we cannot use; the message names the problem for the 400 response."""


@dataclass(frozen=True)
class BookingEvent:
    """One Cal.com delivery, reduced to what scheduling needs.

    All datetimes are timezone-aware UTC. Strings are stripped; absent optional
    fields are "" (text) or None (times, numbers).

    - trigger: `triggerEvent` (e.g. "BOOKING_CREATED").
    - created_at: envelope `createdAt`, when Cal.com sent the webhook (§1); for the flat
      MEETING_* shape it is the booking row's `createdAt`. None when absent.
    - uid: `payload.uid`, the booking's public id; changes on reschedule (§3).
    - ical_uid, ical_sequence: `payload.iCalUID` (stable across a reschedule chain) and
      `payload.iCalSequence` (+1 per reschedule and on cancel).
    - reschedule_uid: `payload.rescheduleUid`, the booking this one replaces; for the flat
      MEETING_* shape, the row's `fromReschedule`.
    - start, end: `payload.startTime` / `payload.endTime`.
    - email, name: the booker, from `responses.email.value` / `responses.name.value`, else
      `attendees[0]`; email is lower-cased.
    - time_zone: `attendees[0].timeZone` (IANA name), the booker's own zone.
    - meeting_url: `metadata.videoCallUrl`, else `videoCallData.url`, else `location` when it
      is an http(s) URL (§2: do not trust `location` otherwise).
    - event_type, title: `payload.type` (event-type slug) and `payload.eventTitle` or `title`.
    - event_type_id: `payload.eventTypeId` as a string of digits ("" when absent).
    - application_id: `metadata.application_id`, else the hidden booking question
      `application-id` / `application_id` in `responses` (§2).
    - booking_status: `payload.status` ("ACCEPTED", "PENDING", "CANCELLED", "REJECTED").
    - request_reschedule: `payload.requestReschedule` on BOOKING_CANCELLED (§3 edge 1).
    - reason: `cancellationReason` or `rejectionReason`.
    - reschedule_url, cancel_url: the booker's own pages to move or cancel this booking
      (Cal.com: built from `payload.bookerUrl` and `uid`); "" when the provider offers none.
    """

    trigger: str
    created_at: datetime | None = None
    uid: str = ""
    ical_uid: str = ""
    ical_sequence: int | None = None
    reschedule_uid: str = ""
    start: datetime | None = None
    end: datetime | None = None
    email: str = ""
    name: str = ""
    time_zone: str = ""
    meeting_url: str = ""
    event_type: str = ""
    event_type_id: str = ""
    title: str = ""
    application_id: str = ""
    booking_status: str = ""
    request_reschedule: bool = False
    reason: str = ""
    content_hash: str = ""
    reschedule_url: str = ""
    cancel_url: str = ""

    @property
    def logical_key(self):
        """Return "TRIGGER:uid:createdAt" (PROTOCOL.md §5), the event's identity.

        It names the event independently of how the JSON was serialised, so a
        re-serialised redelivery is recognised as the same event. Without a
        createdAt, the hash of the canonically re-serialised body stands in for it.
        """
        when = self.created_at.isoformat() if self.created_at else f"sha256={self.content_hash}"
        return f"{self.trigger}:{self.uid}:{when}"
