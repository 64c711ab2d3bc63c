"""The provider-neutral booking event: what every provider's parser produces.

Provider JSON stops in `scheduling/providers/`; matching, booking merge and the state
machine see only the frozen `BookingEvent` below, with aware-UTC datetimes. Trigger
names are Cal.com's (`triggerEvent`, PROTOCOL.md §1), the vocabulary every other
provider's events are mapped onto (Calendly §8 and Cronofy §9 in their own modules).
"""

from dataclasses import dataclass, field
from datetime import datetime

# Providers, as stored on WebhookDelivery.provider and Booking.kind.
CALCOM = "calcom"
CALENDLY = "calendly"
CRONOFY = "cronofy"
PROVIDERS = (CALCOM, CALENDLY, CRONOFY)

BOOKING_CREATED = "BOOKING_CREATED"
BOOKING_RESCHEDULED = "BOOKING_RESCHEDULED"
BOOKING_REQUESTED = "BOOKING_REQUESTED"
BOOKING_CANCELLED = "BOOKING_CANCELLED"
BOOKING_REJECTED = "BOOKING_REJECTED"
BOOKING_LOCATION_UPDATED = "BOOKING_LOCATION_UPDATED"
BOOKING_REASSIGNED = "BOOKING_REASSIGNED"
BOOKING_NO_SHOW_UPDATED = "BOOKING_NO_SHOW_UPDATED"
AFTER_GUESTS_CAL_VIDEO_NO_SHOW = "AFTER_GUESTS_CAL_VIDEO_NO_SHOW"
AFTER_HOSTS_CAL_VIDEO_NO_SHOW = "AFTER_HOSTS_CAL_VIDEO_NO_SHOW"
MEETING_ENDED = "MEETING_ENDED"
PING = "PING"

# Triggers that change a booking's state and schedule, so need a uid, times and the booker.
BOOKING_TRIGGERS = frozenset(
    {BOOKING_CREATED, BOOKING_RESCHEDULED, BOOKING_REQUESTED, BOOKING_CANCELLED,
     BOOKING_REJECTED, MEETING_ENDED}
)
# Triggers that change a detail of a booking we already know (the place, the interviewer,
# who turned up), never its state: they need only the uid.
DETAIL_TRIGGERS = frozenset(
    {BOOKING_LOCATION_UPDATED, BOOKING_REASSIGNED, BOOKING_NO_SHOW_UPDATED,
     AFTER_GUESTS_CAL_VIDEO_NO_SHOW, AFTER_HOSTS_CAL_VIDEO_NO_SHOW}
)
NO_SHOW_TRIGGERS = frozenset(
    {BOOKING_NO_SHOW_UPDATED, AFTER_GUESTS_CAL_VIDEO_NO_SHOW, AFTER_HOSTS_CAL_VIDEO_NO_SHOW}
)
# Triggers that can bring a booking we have never seen (so may make an orphaned interview).
NEW_BOOKING_TRIGGERS = frozenset({BOOKING_CREATED, BOOKING_RESCHEDULED, BOOKING_REQUESTED})

# The largest integer we store from a body: PostgreSQL's `integer` (iCalSequence, §2).
MAX_INT = 2**31 - 1


class ParseError(ValueError):
    """A verified body we cannot use; the message names the problem for the 400 response."""


@dataclass(frozen=True)
class Organizer:
    """The interviewer: the booking's host (Cal.com `organizer`, Calendly `event_memberships[0]`).

    name, email (lower-cased), time_zone (IANA name); "" when unknown.
    """

    name: str = ""
    email: str = ""
    time_zone: str = ""


@dataclass(frozen=True)
class BookingEvent:
    """One provider delivery, reduced to what scheduling needs.

    All datetimes are timezone-aware UTC. Strings are stripped; absent optional
    fields are "" (text), None (times, numbers, unknown booleans) or () (tuples).
    Field sources are Cal.com's (PROTOCOL.md §2-4); Calendly and Cronofy map onto the
    same fields in their own parse modules.

    - provider: "calcom", "calendly" or "cronofy" (the module that parsed it).
    - trigger: `triggerEvent` (e.g. "BOOKING_CREATED").
    - created_at: envelope `createdAt`, when the provider sent the webhook (§1); for the
      flat MEETING_* shape it is the booking row's `createdAt`. None when absent.
    - uid: `payload.uid`, the booking's public id; changes on reschedule (§3).
    - attendee_key: "" for an ordinary booking; for a seated event type (`seatsPerTimeSlot`
      set, §3-4) the booker's email, because every seat shares the uid: (uid, attendee_key)
      is one applicant's independent booking.
    - ical_uid, ical_sequence: `payload.iCalUID` (stable across a reschedule chain) and
      `payload.iCalSequence` (+1 per reschedule and on cancel), 0 to MAX_INT.
    - reschedule_uid: `payload.rescheduleUid`, the booking this one replaces; for the flat
      MEETING_* shape, the row's `fromReschedule`.
    - rescheduled_to_uid: the booking that replaces this one, when a cancel says so
      (Calendly's `new_invitee` on the cancel half of a reschedule, §8).
    - start, end: `payload.startTime` / `payload.endTime`.
    - email, name, phone: the booker, from `responses` else `attendees[0]`; email is
      lower-cased; phone from `attendees[0].phoneNumber` or `responses.attendeePhoneNumber`.
    - time_zone: `attendees[0].timeZone` (IANA name), the booker's own zone.
    - meeting_url: a link the provider generated (`videoCallData.url`, a URL `location`);
      `metadata.videoCallUrl` only when it agrees with those or its host belongs to the
      booking's video integration (§2: the booker can set metadata).
    - location: the place when it is not a link or an integration: an address, a phone
      number, "Office 3B"; "" otherwise.
    - organizer: an Organizer (the interviewer); team, scheduling_type, assignment_reason:
      `team.name`, `schedulingType`, `assignmentReason` (text) for team events.
    - event_type, title: `payload.type` (event-type slug) and `payload.eventTitle` or `title`.
    - event_type_id: `payload.eventTypeId` as a string of digits ("" when absent).
    - application_id: the application reference from the booking link: Cal.com's
      `metadata.application_id` or the `application-id` question, Calendly's
      `tracking.utm_content`, Cronofy's `correlation_id`. Raw: matching decides what it names.
    - booking_status: `payload.status` ("ACCEPTED", "PENDING", "CANCELLED", "REJECTED").
    - request_reschedule: `payload.requestReschedule` on BOOKING_CANCELLED (§3 edge 1).
    - reason: `cancellationReason` or `rejectionReason`; reschedule_reason:
      `responses.rescheduleReason.value`.
    - rescheduled_by, cancelled_by: `rescheduledBy` / `cancelledBy` (an email, or a name
      where the provider gives only that).
    - responses: ((label, answer), ...) from `userFieldsResponses`, the organizer's own
      questions, for the admin to read.
    - no_show_attendees: ((email, bool), ...) from BOOKING_NO_SHOW_UPDATED `attendees`
      (an email of "" stands for the booking's own attendee: Calendly's no-show names the
      invitee, which is the booking);
      no_show_host: True/False when the event says whether the host missed it, else None.
      AFTER_GUESTS_CAL_VIDEO_NO_SHOW marks the booker (see `no_show_for`).
    - reschedule_url, cancel_url: the booker's own pages to move or cancel this booking
      (Cal.com: built from `payload.bookerUrl` and `uid`; Calendly: `reschedule_url`,
      `cancel_url`); "" when the provider offers none.
    """

    trigger: str
    provider: str = CALCOM
    created_at: datetime | None = None
    uid: str = ""
    attendee_key: str = ""
    ical_uid: str = ""
    ical_sequence: int | None = None
    reschedule_uid: str = ""
    rescheduled_to_uid: str = ""
    start: datetime | None = None
    end: datetime | None = None
    email: str = ""
    name: str = ""
    phone: str = ""
    time_zone: str = ""
    meeting_url: str = ""
    location: str = ""
    organizer: Organizer = field(default_factory=Organizer)
    team: str = ""
    scheduling_type: str = ""
    assignment_reason: str = ""
    event_type: str = ""
    event_type_id: str = ""
    title: str = ""
    application_id: str = ""
    booking_status: str = ""
    request_reschedule: bool = False
    reason: str = ""
    reschedule_reason: str = ""
    rescheduled_by: str = ""
    cancelled_by: str = ""
    responses: tuple = ()
    no_show_attendees: tuple = ()
    no_show_host: bool | None = None
    content_hash: str = ""
    reschedule_url: str = ""
    cancel_url: str = ""

    @property
    def logical_key(self):
        """Return "TRIGGER:uid:createdAt" (PROTOCOL.md §5), the event's identity.

        It names the event independently of how the JSON was serialised, so a
        re-serialised redelivery is recognised as the same event. Without a
        createdAt, the hash of the canonically re-serialised body stands in for it.
        A seat's key and a provider other than Cal.com are part of the identity too:
        two seats' creates can share uid and createdAt.
        """
        when = self.created_at.isoformat() if self.created_at else f"sha256={self.content_hash}"
        key = f"{self.trigger}:{self.uid}:{when}"
        if self.attendee_key:
            key += f":{self.attendee_key}"
        return key if self.provider == CALCOM else f"{self.provider}:{key}"

    def no_show_for(self, email):
        """Return True/False when this event says whether attendee `email` missed the meeting, else None.

        AFTER_GUESTS_CAL_VIDEO_NO_SHOW says the guests (the booker) never joined.
        """
        if self.trigger == AFTER_GUESTS_CAL_VIDEO_NO_SHOW:
            return True
        marks = dict(self.no_show_attendees)
        if email in marks:
            return marks[email]
        return marks.get("")

    def describe_change(self):
        """Return who moved or cancelled the booking and why, as a sentence fragment ("" if unknown)."""
        if self.trigger == BOOKING_CANCELLED and self.rescheduled_to_uid:
            verb = "Rescheduled"
            who = self.rescheduled_by or self.cancelled_by
            why = self.reschedule_reason or self.reason
        elif self.trigger in (BOOKING_CANCELLED, BOOKING_REJECTED):
            verb = "Rejected" if self.trigger == BOOKING_REJECTED else (
                "Reschedule requested" if self.request_reschedule else "Cancelled")
            who, why = self.cancelled_by, self.reason
        elif self.trigger in NEW_BOOKING_TRIGGERS and self.reschedule_uid:
            verb, who, why = "Rescheduled", self.rescheduled_by, self.reschedule_reason
        else:
            return ""
        if not who and not why:
            return ""
        words = verb + (f" by {who}" if who else "")
        return words + (f": “{why[:200]}”" if why else "")
