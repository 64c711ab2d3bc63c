"""Recording orphaned interviews and closing them when their booking resolves itself."""

from django.db.models import Q
from django.utils import timezone

from .models import OrphanedInterview


def record_orphan(cohort, booking, *, reason, delivery=None, application_ref="", previous_uid=""):
    """Record (or refresh) the orphaned interview for an unmatched `booking`; return it.

    One orphan per booking chain: a reschedule of an orphaned booking (its
    `previous_uid`, or a shared iCalUID) moves the existing orphan to the new
    uid and times instead of raising a second alert. `booking` is a
    scheduling.Booking, `reason` an OrphanedInterview.Reason value, `delivery`
    the WebhookDelivery that brought it. Run inside the caller's transaction.
    """
    details = {
        "ical_uid": booking.ical_uid,
        "email": booking.email,
        "name": booking.name,
        "start": booking.start,
        "end": booking.end,
        "time_zone": booking.time_zone,
        "meeting_url": booking.meeting_url,
        "event_type": booking.event_type,
    }
    orphans = OrphanedInterview.objects.select_for_update().filter(cohort=cohort)
    exact = orphans.filter(booking_uid=booking.uid).first()
    if exact is not None:
        _update(exact, details)
        return exact
    chain = Q(booking_uid=previous_uid) if previous_uid else Q(pk__in=[])
    if booking.ical_uid:
        chain |= Q(ical_uid=booking.ical_uid)
    moved = orphans.filter(chain, resolved_at__isnull=True).order_by("-created_at").first()
    if moved is not None:
        # Deliveries come in any order: an older booking of the chain arriving late must not
        # pull the orphan back from the booking that replaced it.
        if not booking.__class__.objects.filter(cohort=cohort, reschedule_uid=booking.uid).exists():
            _update(moved, {**details, "booking_uid": booking.uid})
        return moved
    orphan, _ = OrphanedInterview.objects.get_or_create(
        cohort=cohort, booking_uid=booking.uid,
        defaults={**details, "reason": reason, "delivery": delivery,
                  "application_ref": application_ref[:64]},
    )
    return orphan


def _update(orphan, details):
    for name, value in details.items():
        setattr(orphan, name, value)
    orphan.save(update_fields=list(details))


def close_orphan_for_booking(cohort, booking, application):
    """Resolve the open orphan of `booking` once it no longer needs an admin.

    With an `application` (a later event matched the booking by itself) the
    orphan is marked matched to it; without one, it is dismissed only when the
    booking was cancelled or rejected in Cal.com. Returns the number closed (0 or 1).
    """
    open_orphans = OrphanedInterview.objects.filter(
        cohort=cohort, booking_uid=booking.uid, resolved_at__isnull=True
    )
    now = timezone.now()
    if application is not None:
        return open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.MATCHED,
            application=application,
        )
    if booking.state in ("cancelled", "rejected"):
        return open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.DISMISSED,
            dismiss_reason=f"Booking {booking.state} in Cal.com",
        )
    return 0
