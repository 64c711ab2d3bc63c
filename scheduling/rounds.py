"""Interview rounds: which round a status waits for, and which round a booking is for.

A booking's round comes from its event type (Cal.com `payload.type` slug or
`payload.eventTypeId`, PROTOCOL.md §2) looked up in the cohort's
InterviewRound.event_types. Cohorts that list no event types, and bookings of
event types no round lists, have no round: they behave as before rounds existed.
"""

from .models import InterviewRound
from .status import Status

# The round an application in each status would book next; a booking of the other round's
# event type must not move it as if it were this one.
WAITED_FOR = {
    Status.NEW: 1,
    Status.WAITING_FIRST_ROUND: 1,
    Status.WAITING_SECOND_ROUND: 2,
}
ORDINAL = {1: "first", 2: "second"}


def round_waited_for(status):
    """Return the round (1 or 2) an application in `status` (a Status value) books next, or None."""
    return WAITED_FOR.get(status)


def configured_round(cohort_id, number):
    """Return the cohort's InterviewRound `number` (1 or 2), or None when it is not set up."""
    return InterviewRound.objects.filter(cohort_id=cohort_id, number=number).first()


def round_for_event(cohort, event):
    """Return the round (1 or 2) whose event types hold `event`'s event type, or None.

    `event` is a BookingEvent: `event_type` is Cal.com's `payload.type` slug,
    `event_type_id` its `payload.eventTypeId`. None when the cohort lists no event
    types, or none that matches.
    """
    if not (event.event_type or event.event_type_id):
        return None
    for interview_round in InterviewRound.objects.filter(cohort=cohort).exclude(event_types=[]):
        if interview_round.holds_event_type(event.event_type, event.event_type_id):
            return interview_round.number
    return None


def wrong_round_sentence(booked, waiting):
    """Return "Booked the first-round interview while waiting for round 2" for rounds (1, 2)."""
    return f"Booked the {ORDINAL[booked]}-round interview while waiting for round {waiting}"


def wrong_round(status, booked):
    """Return the attention sentence when a booking of round `booked` does not fit `status`, else "".

    `booked` is the booking's round (None: unknown, always fits); `status` the
    application's status before the booking.
    """
    waiting = round_waited_for(status)
    if booked is None or waiting is None or booked == waiting:
        return ""
    return wrong_round_sentence(booked, waiting)
