"""Moving bookings between applications by hand (the Django admin, unmatching an orphan).

The webhook never needs this: a booking follows its match. An admin who moves one
must leave both applications as a webhook would: each re-synced from the bookings
it has afterwards, each told on its timeline.
"""

from django.db import transaction

from applications.audit import snapshot
from applications.models import Application
from orphans.services import close_orphan_for_booking

from .audit import record_booking_moved
from .bookings import NOT_SUPERSEDING, _chain_of, sync_application
from .models import Booking, WebhookDelivery
from .status import CLOSED


class BookingMoveRefused(Exception):
    """The move would break a rule; str() says which, in a sentence. Nothing was changed."""


def newest_live_booking(application):
    """Return `application`'s newest accepted booking that no reschedule replaced, or None."""
    bookings = list(application.bookings.all())
    replaced = {b.reschedule_uid for b in bookings if b.reschedule_uid and b.state not in NOT_SUPERSEDING}
    live = [b for b in bookings if b.state == Booking.State.ACCEPTED and b.uid not in replaced]
    return max(live, key=lambda b: (b.last_event_at or b.created_at, b.last_sequence, b.pk), default=None)


def resync_after_loss(application, lost, *, user=None, note=""):
    """Re-sync locked `application` after booking `lost` left it; return the sync's sentence.

    Its earlier interview comes back when one of its bookings is still live; else the
    schedule clears and a scheduled status returns to waiting.
    """
    earlier = newest_live_booking(application)
    if earlier is not None:
        return sync_application(application, touched=earlier, opens=True, user=user, note=note)
    return sync_application(application, touched=lost, opens=False, user=user, note=note)


def move_booking(booking, target, *, user):
    """Give `booking` (with its reschedule chain) to application `target`; re-sync both; return a sentence.

    `target` None returns it to nobody (the orphan queue is orphans.services'
    business: use unmatch_orphan there). The webhook deliveries of the moved
    bookings follow them. Raises BookingMoveRefused for another cohort, a closed
    application or an archived cohort.
    """
    if target is not None and target.cohort_id != booking.cohort_id:
        raise BookingMoveRefused("That application is in another cohort; nothing was changed.")
    with transaction.atomic():
        # The webhook's lock order: applications first, then the booking. The other order
        # could deadlock with a webhook applying to the same booking.
        owner = Booking.objects.filter(pk=booking.pk).values_list("application_id", flat=True).get()
        ids = sorted(pk for pk in (owner, getattr(target, "pk", None)) if pk)
        locked = {a.pk: a for a in Application.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        booking = Booking.objects.select_for_update(of=("self",)).select_related("cohort").get(pk=booking.pk)
        if booking.application_id != owner:
            raise BookingMoveRefused(f"Booking {booking.uid} was given to another application meanwhile (a "
                                     "webhook or another admin); nothing was changed. Reload and try again.")
        if booking.cohort.is_archived:
            raise BookingMoveRefused("The cohort is archived: nothing in it can change.")
        source = locked.get(booking.application_id)
        target = locked.get(getattr(target, "pk", None))
        if source is not None and target is not None and source.pk == target.pk:
            return "The booking already belongs to that application; nothing was changed."
        if target is not None and target.status in CLOSED:
            raise BookingMoveRefused(f"{target.applicant_name} is {target.status_label.lower()}: a closed "
                                     "application cannot take an interview. Nothing was changed.")
        chain = _chain_of(booking, list(source.bookings.all())) if source else [booking]
        moving = [b.pk for b in chain] or [booking.pk]
        Booking.objects.filter(pk__in=moving).update(application=target)
        WebhookDelivery.objects.filter(cohort_id=booking.cohort_id, booking_uid__in=[b.uid for b in chain]
                                       ).update(application=target)
        booking.application = target
        words = []
        if target is not None:
            close_orphan_for_booking(booking.cohort, booking, target)
            words.append(f"{target.applicant_name}: " + sync_application(
                target, touched=booking, opens=True, user=user, note=f"Booking {booking.uid} moved here by {user}"))
        if source is not None:
            words.append(f"{source.applicant_name}: " + resync_after_loss(
                source, booking, user=user, note=f"Booking {booking.uid} moved away by {user}"))
        record_booking_moved(booking, source=source, target=target, user=user)
        for pk in moving:
            snapshot(Booking(pk=pk), user=user, reason="Moved by an admin")
    return " ".join(words)
