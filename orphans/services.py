"""Orphaned interviews: recording and closing them, matching, unmatching, dismissing, restoring.

Work that spans models lives here; the single-row rules are on OrphanedInterview.
Alerting admins is orphans.alerts' (record_orphan only publishes the task);
suggesting and searching applications for an orphan is orphans.suggestions'.
"""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from applications.models import Application, ApplicationEmail, bump_cohort_version, normalize_email
from scheduling.models import Booking, MatchRule, WebhookDelivery
from scheduling.status import CLOSED

from applications import timeline
from applications.audit import snapshot

from .models import OrphanedInterview

logger = logging.getLogger(__name__)


class ChainMatchedMeanwhile(Exception):
    """A booking of this booking's chain got an application after the delivery was matched."""


def record_orphan(cohort, booking, *, reason, delivery=None, application_ref="", previous_uid=""):
    """Record (or refresh) the orphaned interview for an unmatched `booking`; return it.

    One orphan per booking chain: a reschedule of an orphaned booking (its
    `previous_uid`, or a shared iCalUID) moves the existing orphan to the new
    uid and times instead of raising a second alert. `booking` is a
    scheduling.Booking, `reason` an OrphanedInterview.Reason value, `delivery`
    the WebhookDelivery that brought it. Run inside the caller's transaction.
    A new orphan publishes its alert task after commit. Raises
    ChainMatchedMeanwhile when an admin matched the chain while the delivery
    was being applied (the caller matches again).
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
    exact = orphans.filter(booking_uid=booking.uid, attendee_key=booking.attendee_key).first()
    bump_cohort_version(cohort.pk)
    if exact is not None:
        _update(exact, details)
        return exact
    chain = Q(booking_uid=previous_uid) if previous_uid else Q(pk__in=[])
    if booking.ical_uid:
        chain |= Q(ical_uid=booking.ical_uid)
    moved = (orphans.filter(chain, attendee_key=booking.attendee_key, resolved_at__isnull=True)
             .order_by("-created_at").first())
    if moved is not None:
        # Deliveries come in any order: an older booking of the chain arriving late must not
        # pull the orphan back from the booking that replaced it.
        if not Booking.objects.filter(cohort=cohort, reschedule_uid=booking.uid,
                                      attendee_key=booking.attendee_key).exists():
            _update(moved, {**details, "booking_uid": booking.uid})
        return moved
    # The delivery matched nothing, but an admin may have matched the chain since (we waited
    # for their lock above): then this booking is theirs too, and must not become an orphan.
    chain = Booking.objects.linked_to(booking.uid, reschedule_uid=previous_uid or booking.reschedule_uid,
                                      ical_uid=booking.ical_uid, attendee_key=booking.attendee_key,
                                      rescheduled_to_uid=booking.rescheduled_to_uid)
    if chain.filter(cohort=cohort, application__isnull=False).exists():
        raise ChainMatchedMeanwhile(booking.uid)
    orphan, created = OrphanedInterview.objects.get_or_create(
        cohort=cohort, booking_uid=booking.uid, attendee_key=booking.attendee_key,
        defaults={**details, "reason": reason, "delivery": delivery,
                  "application_ref": application_ref[:64]},
    )
    if created:
        from .tasks import ALERT_COALESCE_SECONDS, send_orphan_alert

        # After commit (a rolled-back orphan alerts nobody); never raises (orphans.tasks).
        send_orphan_alert.apply_async_on_commit((orphan.pk,), countdown=ALERT_COALESCE_SECONDS)
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
        cohort=cohort, booking_uid=booking.uid, attendee_key=booking.attendee_key,
        resolved_at__isnull=True,
    )
    now = timezone.now()
    closed = 0
    if application is not None:
        closed = open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.MATCHED,
            application=application,
        )
    elif booking.state in ("cancelled", "rejected"):
        closed = open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.DISMISSED,
            dismiss_reason=f"Booking {booking.state} in {booking.get_kind_display()}",
        )
    if closed:
        bump_cohort_version(cohort.pk)
    return closed


# --- matching, dismissing, restoring ---------------------------------------------------------


class OrphanConflict(Exception):
    """The orphan or the application changed first: nothing was changed. str() says what."""


class OrphanAlreadyResolved(OrphanConflict):
    """Someone matched or dismissed the orphan first (or it is not dismissed, for a restore)."""

    def __init__(self, orphan, message=None):
        self.orphan = orphan
        who = f" by {orphan.resolved_by}" if orphan.resolved_by_id else ""
        if orphan.resolution == OrphanedInterview.Resolution.MATCHED:
            target = f" to {orphan.application.applicant_name}" if orphan.application_id else ""
            default = f"{orphan.email} was already matched{target}{who}; nothing was changed."
        elif orphan.resolution == OrphanedInterview.Resolution.DISMISSED:
            default = f"{orphan.email} was already dismissed{who}; nothing was changed."
        else:
            default = f"{orphan.email} is not dismissed (any more); nothing was changed."
        super().__init__(message or default)


class ApplicationClosed(OrphanConflict):
    """The chosen application's status is final: a booking cannot schedule it."""

    def __init__(self, application):
        self.application = application
        super().__init__(
            f"{application.applicant_name} is {application.status_label.lower()}: "
            "a closed application cannot take an interview. Nothing was changed."
        )


def match_orphan(orphan, application, *, user, remember_email=True):
    """Give `orphan`'s booking to `application`, the way a webhook match would; return a sentence.

    In one transaction: locks the application, the booking and the orphan (the
    webhook's lock order), binds the booking and the unmatched bookings of its
    chain (same iCalUID, rescheduleUid links) to the application, then runs
    scheduling.bookings.sync_application, so the schedule, status transition,
    stage and history ("Matched by <user>") are exactly a webhook's. Marks the
    orphan matched by `user`, and with `remember_email` adds the booker's email
    as an alternate email, so the applicant's next bookings match by themselves.
    Later reschedules and cancels follow through the booking chain.

    Raises OrphanAlreadyResolved when someone resolved the orphan first,
    ApplicationClosed when the application is accepted, waitlisted or declined,
    ValueError when the application is in another cohort.
    """
    from scheduling.bookings import sync_application  # scheduling.services imports this module

    if application.cohort_id != orphan.cohort_id:
        raise ValueError("The application is not in the orphan's cohort.")
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=application.pk)
        booking, locked = _lock_booking_and_orphan(orphan)
        if locked.is_resolved:
            raise OrphanAlreadyResolved(locked)
        if application.status in CLOSED:
            raise ApplicationClosed(application)
        if booking.application_id not in (None, application.pk):
            raise OrphanConflict(f"Booking {booking.uid} already belongs to another application; "
                                 "nothing was changed.")
        if locked.cohort.is_archived:
            raise OrphanConflict("The cohort is archived: nothing in it can change.")
        chain = Booking.objects.unmatched_chain(booking)
        Booking.objects.filter(pk__in=[b.pk for b in chain]).update(application=application)
        booking.application = application
        replaced_uid, replaced_start = application.interview_booking_uid, application.interview_start
        sentence = sync_application(application, touched=booking, opens=True, user=user,
                                    note=f"Matched by {user}")
        replaced = replaced_uid and application.interview_booking_uid != replaced_uid
        timeline.record(application, "matched", user=user, uid=booking.uid, email=locked.email,
                        start=timeline.iso(booking.start),
                        replaced_uid=replaced_uid if replaced else "",
                        replaced_start=timeline.iso(replaced_start) if replaced else None)
        now = timezone.now()
        # Orphans of earlier bookings of the chain (orphaned too) are settled by this match.
        OrphanedInterview.objects.filter(
            cohort=locked.cohort_id, resolved_at__isnull=True, booking_uid__in=[b.uid for b in chain],
            attendee_key=booking.attendee_key,
        ).update(resolved_at=now, resolved_by=user, resolution=OrphanedInterview.Resolution.MATCHED,
                 application=application)
        # The deliveries of those bookings now concern the application (its detail page lists them).
        WebhookDelivery.objects.filter(
            cohort=locked.cohort_id, booking_uid__in=[b.uid for b in chain], application__isnull=True,
        ).update(application=application, match_rule=MatchRule.MANUAL)
        email = normalize_email(locked.email)
        if remember_email and email and email != application.contact_email:
            _, added = ApplicationEmail.objects.get_or_create(application=application, email=email)
            if added:
                OrphanedInterview.objects.filter(pk=locked.pk).update(added_email=email)
        snapshot(locked, user=user, reason=f"Matched to {application.public_id}")
        bump_cohort_version(locked.cohort_id)
    orphan.resolved_at, orphan.resolved_by, orphan.application = now, user, application
    orphan.resolution = OrphanedInterview.Resolution.MATCHED
    return sentence


def _lock_booking_and_orphan(orphan):
    """Lock the orphan's Booking, then the orphan; return both (the booking created if never stored).

    The webhook locks a booking before its orphan (record_orphan): taking them in
    the same order means a match and a delivery for the same booking queue
    instead of deadlocking. A reschedule can move the orphan to a new booking
    uid between the unlocked read and the lock; then we read again.
    """
    for _ in range(3):
        seen = OrphanedInterview.objects.get(pk=orphan.pk)
        booking, _ = Booking.objects.select_for_update().get_or_create(
            cohort_id=seen.cohort_id, uid=seen.booking_uid, attendee_key=seen.attendee_key,
            defaults={
                "ical_uid": seen.ical_uid, "state": Booking.State.ACCEPTED, "start": seen.start,
                "end": seen.end, "meeting_url": seen.meeting_url, "email": seen.email,
                "name": seen.name, "time_zone": seen.time_zone, "event_type": seen.event_type,
                "last_event_at": seen.created_at,
            },
        )
        locked = (OrphanedInterview.objects.select_for_update(of=("self",))
                  .select_related("resolved_by", "application").get(pk=orphan.pk))
        if locked.booking_uid == booking.uid:
            return booking, locked
    raise OrphanConflict("The booking kept changing while we matched it; try again.")


def dismiss_orphan(orphan, *, user, reason):
    """Dismiss `orphan` with `reason` (an OrphanedInterview.DismissReason); it leaves the badge.

    Kept, and restorable with `restore_orphan`. A conditional UPDATE: raises
    OrphanAlreadyResolved when someone matched or dismissed it first, ValueError
    for an unknown reason.
    """
    reason = OrphanedInterview.DismissReason(reason)
    now = timezone.now()
    done = OrphanedInterview.objects.filter(pk=orphan.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=user, resolution=OrphanedInterview.Resolution.DISMISSED,
        dismiss_reason=reason.value,
    )
    if not done:
        raise OrphanAlreadyResolved(_reread(orphan))
    snapshot(orphan, user=user, reason=f"Dismissed: {reason.label}")
    bump_cohort_version(orphan.cohort_id)
    orphan.resolved_at, orphan.resolved_by = now, user
    orphan.resolution, orphan.dismiss_reason = OrphanedInterview.Resolution.DISMISSED, reason.value


def restore_orphan(orphan, *, user):
    """Put a dismissed `orphan` back among the unresolved ones (and on the badge).

    Raises OrphanAlreadyResolved when it is not dismissed (any more): matched,
    or restored by someone else first. Who dismissed it and why stay in its
    history (the dismissal's snapshot); the restore is recorded as by `user`.
    """
    done = OrphanedInterview.objects.filter(
        pk=orphan.pk, resolution=OrphanedInterview.Resolution.DISMISSED
    ).update(resolved_at=None, resolved_by=None, resolution="", dismiss_reason="")
    if not done:
        fresh = _reread(orphan)
        raise OrphanAlreadyResolved(fresh, None if fresh.is_resolved else
                                    f"{fresh.email} was already restored; nothing was changed.")
    snapshot(orphan, user=user, reason="Restored")
    bump_cohort_version(orphan.cohort_id)
    logger.info("Orphan #%s restored by %s", orphan.pk, user)
    orphan.resolved_at, orphan.resolved_by, orphan.resolution, orphan.dismiss_reason = None, None, "", ""


def unmatch_orphan(orphan, *, user):
    """Undo the match of `orphan`: its booking goes back to the orphan queue; return a sentence.

    In one transaction, in the webhook's lock order (application, booking,
    orphan): the booking and the rest of its chain leave the application, with
    their webhook deliveries; the alternate email the match added is removed (so
    the next booking from it does not match again); the orphan is unresolved
    again, its alert state untouched (an alert already sent is not sent again).
    Then the application is re-synced: its earlier interview is current again if
    that booking is still live, else the schedule clears and a scheduled status
    returns to waiting. Both the timeline and the orphan's history record it.

    Raises OrphanConflict when the orphan is not matched (any more), its booking
    has moved to another application since, or the cohort is archived.
    """
    from scheduling.bookings import _chain_of
    from scheduling.reassign import resync_after_loss

    with transaction.atomic():
        seen = OrphanedInterview.objects.select_related("cohort").get(pk=orphan.pk)
        if seen.resolution != OrphanedInterview.Resolution.MATCHED or seen.application_id is None:
            raise OrphanConflict(f"{seen.email} is not matched (any more); nothing was changed.")
        if seen.cohort.is_archived:
            raise OrphanConflict("The cohort is archived: nothing in it can change.")
        application = Application.objects.select_for_update().get(pk=seen.application_id)
        booking, locked = _lock_booking_and_orphan(orphan)
        if locked.resolution != OrphanedInterview.Resolution.MATCHED or locked.application_id != application.pk:
            raise OrphanConflict(f"{locked.email} was changed by someone else first; nothing was changed.")
        if booking.application_id != application.pk:
            raise OrphanConflict(f"Booking {booking.uid} has moved to another application since; "
                                 "nothing was changed.")
        chain = _chain_of(booking, list(application.bookings.all())) or [booking]
        uids = [b.uid for b in chain]
        Booking.objects.filter(pk__in=[b.pk for b in chain]).update(application=None)
        booking.application = None
        WebhookDelivery.objects.filter(cohort=locked.cohort_id, booking_uid__in=uids,
                                       application=application).update(application=None)
        if locked.added_email:
            ApplicationEmail.objects.filter(application=application, email=locked.added_email).delete()
        OrphanedInterview.objects.filter(pk=locked.pk).update(
            resolved_at=None, resolved_by=None, resolution="", application=None, added_email="")
        sentence = resync_after_loss(application, booking, user=user, note=f"Unmatched by {user}")
        restored = application.interview_booking_uid not in ("", *uids)
        timeline.record(application, "unmatched", user=user, uid=booking.uid, start=timeline.iso(booking.start),
                        restored_uid=application.interview_booking_uid if restored else "",
                        restored_start=timeline.iso(application.interview_start) if restored else None)
        snapshot(locked, user=user, reason=f"Unmatched from {application.public_id}")
        bump_cohort_version(locked.cohort_id)
    orphan.resolved_at, orphan.resolved_by, orphan.resolution, orphan.application = None, None, "", None
    return sentence


def _reread(orphan):
    return OrphanedInterview.objects.select_related("resolved_by", "application").get(pk=orphan.pk)
