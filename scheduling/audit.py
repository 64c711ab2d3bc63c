"""Timeline entries for what scheduling does to an application (see applications.timeline).

Facts only: the sentence is written when the timeline is read, in the reader's zone.
"""

from applications import timeline

from . import events
from .models import Booking


def _by(event):
    """Return who did it, as the provider says: cancelledBy / rescheduledBy, else the booker."""
    for name in ("cancelled_by", "rescheduled_by", "by"):
        value = getattr(event, name, "")
        if value:
            return str(value)
    if event.trigger in (events.BOOKING_CREATED, events.BOOKING_REQUESTED, events.BOOKING_RESCHEDULED):
        return event.name or event.email
    return ""


def record_booking_event(application, event, booking, *, delivery=None):
    """Put booking event `event` (applied to `booking` of `application`) on the application's timeline.

    A reschedule carries the time it moved from (the replaced booking's start).
    `at` is the event's createdAt (aware UTC), else now. Returns the entry.
    """
    data = {
        "trigger": event.trigger, "uid": booking.uid, "start": timeline.iso(event.start or booking.start),
        "by": _by(event)[:200], "reason": (event.reason or "")[:500],
    }
    if event.trigger == events.BOOKING_RESCHEDULED and event.reschedule_uid:
        before = (Booking.objects.filter(cohort_id=booking.cohort_id, uid=event.reschedule_uid)
                  .values_list("start", flat=True).first())
        data["from_start"] = timeline.iso(before)
    if event.trigger == events.BOOKING_CANCELLED and event.request_reschedule:
        data["request_reschedule"] = True
    if event.trigger == events.MEETING_ENDED:
        data["ended_at"] = timeline.iso(event.end)
    return timeline.record(application, "booking", at=event.created_at, delivery=delivery, **data)


def record_booking_moved(booking, *, source, target, user=None, delivery=None):
    """Tell both applications that `booking` moved from `source` to `target` (either may be None)."""
    start = timeline.iso(booking.start)
    if source is not None:
        timeline.record(source, "booking_moved", user=user, delivery=delivery, uid=booking.uid,
                        start=start, direction="out", other=_name(target))
    if target is not None:
        timeline.record(target, "booking_moved", user=user, delivery=delivery, uid=booking.uid,
                        start=start, direction="in", other=_name(source))


def _name(application):
    if application is None:
        return "the orphaned interviews"
    return f"{application.applicant_name} ({application.public_id})"
