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


def record_booking_event(application, event, booking, *, delivery=None, detail=""):
    """Put booking event `event` (applied to `booking` of `application`) on the application's timeline.

    A reschedule carries the time it moved from (the replaced booking's start);
    a detail event (no-show, new place, new interviewer) the sentence saying what
    changed (`detail`). `at` is the event's createdAt (aware UTC), else now.
    Returns the entry.
    """
    data = {
        "trigger": event.trigger, "uid": booking.uid, "start": timeline.iso(event.start or booking.start),
        "by": _by(event)[:200], "reason": (event.reason or "")[:500], "detail": detail[:500],
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


# --- scheduling's own tables on the timeline (applications.timeline.source) ------------------


def _schedule_change_rows(application):
    from django.db.models import F, Value

    from .models import ScheduleChange

    return (ScheduleChange.objects.filter(application=application).order_by()
            .annotate(src=Value("c"), key=F("pk"), at=F("created_at")).values_list("src", "key", "at"))


def _schedule_change_items(pks, tz):
    from .models import ScheduleChange

    found = {}
    for change in ScheduleChange.objects.filter(pk__in=pks).select_related("user"):
        text = change.get_action_display() + (f": {change.detail}" if change.detail else "") + "."
        if change.by_applicant:
            text += " (by the applicant)"
        found[change.pk] = timeline.Item(change.created_at, text, kind="schedule", user=change.user)
    return found


def _invitation_rows(application):
    from django.db.models import F, Value

    from .models import Invitation

    return (Invitation.objects.filter(application=application).order_by()
            .annotate(src=Value("i"), key=F("pk"), at=F("created_at")).values_list("src", "key", "at"))


def _invitation_items(pks, tz):
    from .models import Invitation

    found = {}
    for invitation in Invitation.objects.filter(pk__in=pks).select_related("sent_by"):
        what = "Reminder" if invitation.kind == Invitation.Kind.REMINDER else "Invitation"
        state = {"sent": "sent", "pending": "queued", "failed": "not sent (failed)"}.get(invitation.state,
                                                                                          invitation.state)
        text = f"{what} to book round {invitation.round} {state} to {invitation.to_email}"
        if invitation.sent_by_id is None:
            text += f" ({invitation.get_source_display().lower()})"
        found[invitation.pk] = timeline.Item(invitation.created_at, text + ".", kind="invitation",
                                             user=invitation.sent_by)
    return found


def register_timeline_sources():
    """Put ScheduleChange (issue 9) and Invitation (issue 8) rows on every application's timeline."""
    timeline.source("c", rows=_schedule_change_rows, items=_schedule_change_items)
    timeline.source("i", rows=_invitation_rows, items=_invitation_items)
