"""Orphaned interviews: recording them, alerting admins, matching, dismissing, suggesting.

Work that spans models lives here; the single-row rules (claiming an alert) are
on OrphanedInterview. The alert flow, and why it is shaped this way:

1. `record_orphan` creates an orphan with alert_state "pending" and, after the
   webhook's transaction commits, publishes `send_orphan_alert` with a countdown
   of ALERT_COALESCE_SECONDS. A broker that is down only logs (orphans.tasks).
2. That task sends every pending alert of the orphan's cohort at once
   (`send_cohort_alerts`): a burst (a mis-set cohort: 50 bookings in a minute)
   has piled up meanwhile and goes out as one digest per admin, because the first
   task to run claims them all and the others find nothing left to claim.
   Coalescing in the task, rather than deciding "burst or not" when each orphan
   arrives, needs no counters and cannot send five single emails before noticing.
3. The beat sweep `send_pending_alerts` sends what is still pending after
   ALERT_GRACE (the publish failed, the task was lost, a retry is overdue) the
   same way, grouped by cohort.
Every send claims each orphan with a conditional UPDATE first, so no orphan is
alerted twice, whichever of these runs, and however often.
"""

import difflib
import logging
import re
from datetime import timedelta
from smtplib import SMTPException

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from applications.models import Application, ApplicationEmail, Cohort, bump_cohort_version, normalize_email
from scheduling.models import Booking, MatchRule, WebhookDelivery
from scheduling.status import CLOSED, WAITING, Status

from .emails import alert_messages, alert_recipients
from .models import OrphanedInterview

logger = logging.getLogger(__name__)

# The sweep leaves an alert to its own task this long (and a failed send this long before
# trying again); past it, the alert is overdue and the sweep sends it.
ALERT_GRACE = timedelta(minutes=2)


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


# --- alerts ------------------------------------------------------------------------------


def send_alerts(cohort, orphans, *, now=None):
    """Claim and send the alerts of `orphans` (of `cohort`); return how many orphans went out.

    Each orphan is claimed first (OrphanedInterview.claim_alert); ones another
    sender holds are left alone, resolved ones are marked skipped. The rest go
    to every admin of the cohort's organization in one SMTP session: one email
    each, or one digest when there are more than emails.DIGEST_THRESHOLD.
    On an SMTP error (smtplib.SMTPException, OSError) the claims are released
    with the error recorded (pending again, or failed after ALERT_MAX_ATTEMPTS)
    and the error is raised for the caller to retry. An organization without an
    admin email fails the alerts at once.
    """
    now = now or timezone.now()
    claimed = [orphan.pk for orphan in orphans if orphan.claim_alert(now)]
    if not claimed:
        return 0
    # Read again after claiming: a match or dismiss in between must not be announced.
    fresh = list(OrphanedInterview.objects.filter(pk__in=claimed).order_by("created_at", "pk"))
    live = []
    for orphan in fresh:
        if orphan.is_resolved:
            orphan.alert_skipped(now)
        else:
            live.append(orphan)
    if not live:
        return 0
    recipients = alert_recipients(cohort.organization)
    if not recipients:
        for orphan in live:
            orphan.alert_failed(now, f"No admin of {cohort.organization} has an email address.",
                                final=True)
        logger.warning("Orphan alerts for %s: no admin to send them to", cohort)
        return 0
    messages = alert_messages(cohort, live, recipients)
    try:
        with get_connection() as connection:
            connection.send_messages(messages)
    except (SMTPException, OSError) as exc:
        # A partial failure may have reached some admins; the retry reaches them again. The
        # alternative, recording each recipient, buys little for a rare, harmless repeat.
        for orphan in live:
            orphan.alert_failed(now, f"{type(exc).__name__}: {exc}")
        raise
    for orphan in live:
        orphan.alert_sent(now)
    return len(live)


def send_cohort_alerts(orphan_id):
    """Send every claimable alert of orphan `orphan_id`'s cohort; return how many went out.

    The per-orphan task's work: its own alert, and any that piled up in the same
    cohort meanwhile (a burst becomes a digest). A missing orphan sends nothing.
    """
    orphan = OrphanedInterview.objects.select_related("cohort__organization").filter(pk=orphan_id).first()
    if orphan is None:
        return 0
    pending = orphan.cohort.orphans.alert_claimable().order_by("created_at", "pk")
    return send_alerts(orphan.cohort, pending)


def send_pending_alerts(now=None):
    """Send the alerts still pending after ALERT_GRACE, a batch per cohort; return how many went out.

    The safety net for alerts whose task was never published (broker down), lost,
    or is overdue for a retry. An SMTP error for one cohort is logged and
    recorded on its orphans; the other cohorts still get theirs.
    """
    now = now or timezone.now()
    due = (
        OrphanedInterview.objects.alert_claimable(now)
        .filter(created_at__lte=now - ALERT_GRACE)
        .filter(Q(alert_claimed_at__isnull=True) | Q(alert_claimed_at__lte=now - ALERT_GRACE))
    )
    cohort_ids = set(due.values_list("cohort_id", flat=True))
    sent = 0
    for cohort in Cohort.objects.filter(pk__in=cohort_ids).select_related("organization"):
        try:
            sent += send_alerts(cohort, due.filter(cohort=cohort).order_by("created_at", "pk"), now=now)
        except (SMTPException, OSError):
            logger.exception("Sending the pending orphan alerts of %s failed; the next sweep retries", cohort)
    return sent


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
        chain = Booking.objects.unmatched_chain(booking)
        Booking.objects.filter(pk__in=[b.pk for b in chain]).update(application=application)
        booking.application = application
        sentence = sync_application(application, touched=booking, opens=True, user=user,
                                    note=f"Matched by {user}")
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
            ApplicationEmail.objects.get_or_create(application=application, email=email)
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
    bump_cohort_version(orphan.cohort_id)
    orphan.resolved_at, orphan.resolved_by = now, user
    orphan.resolution, orphan.dismiss_reason = OrphanedInterview.Resolution.DISMISSED, reason.value


def restore_orphan(orphan, *, user):
    """Put a dismissed `orphan` back among the unresolved ones (and on the badge).

    Raises OrphanAlreadyResolved when it is not dismissed (any more): matched,
    or restored by someone else first. `user` is accepted for symmetry and logged.
    """
    done = OrphanedInterview.objects.filter(
        pk=orphan.pk, resolution=OrphanedInterview.Resolution.DISMISSED
    ).update(resolved_at=None, resolved_by=None, resolution="", dismiss_reason="")
    if not done:
        fresh = _reread(orphan)
        raise OrphanAlreadyResolved(fresh, None if fresh.is_resolved else
                                    f"{fresh.email} was already restored; nothing was changed.")
    bump_cohort_version(orphan.cohort_id)
    logger.info("Orphan #%s restored by %s", orphan.pk, user)
    orphan.resolved_at, orphan.resolved_by, orphan.resolution, orphan.dismiss_reason = None, None, "", ""


def _reread(orphan):
    return OrphanedInterview.objects.select_related("resolved_by", "application").get(pk=orphan.pk)


# --- suggestions and search ----------------------------------------------------------------

# Same domain says little at a mail provider everybody uses.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
    "icloud.com", "me.com", "proton.me", "protonmail.com", "aol.com", "gmx.de", "gmx.net",
    "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com",
})
SUGGESTIONS = 3
# Candidates the suggestion query fetches at most, ranked in Python afterwards.
SUGGESTION_POOL = 200
MIN_SCORE = 0.45


def _waiting_first():
    """An ORDER BY key: waiting for an interview (0), new (1), anything else (2)."""
    return Case(When(status__in=list(WAITING), then=Value(0)), When(status=Status.NEW, then=Value(1)),
                default=Value(2), output_field=IntegerField())


def _words(text):
    return [w for w in re.split(r"[\W_\d]+", text.lower()) if len(w) >= 3]


def _split_email(email):
    local, _, domain = normalize_email(email).partition("@")
    return local, domain


def score(orphan, application):
    """Return how likely `application` is `orphan`'s applicant: 0 (no sign) to about 1.5.

    The best of name similarity (difflib) and email local-part similarity, plus
    0.3 for the same (non-webmail) email domain and 0.2 for an application that
    is waiting for an interview (0.1 when new).
    """
    local, domain = _split_email(orphan.email)
    app_local, app_domain = _split_email(application.contact_email)
    name = " ".join(_words(orphan.name)) or " ".join(_words(local))
    similarity = max(
        difflib.SequenceMatcher(None, name, " ".join(_words(application.applicant_name))).ratio(),
        difflib.SequenceMatcher(None, local, app_local).ratio(),
    )
    bonus = 0.3 if domain and domain == app_domain and domain not in FREE_MAIL_DOMAINS else 0
    if application.status in WAITING:
        bonus += 0.2
    elif application.status == Status.NEW:
        bonus += 0.1
    return similarity + bonus


def suggest_applications(cohort, orphans, *, limit=SUGGESTIONS):
    """Return {orphan pk: [Application, …]}: the likeliest open applications for each orphan.

    One query for all of `orphans`: the cohort's open (not accepted, waitlisted
    or declined) applications sharing a name word, an email word or a
    non-webmail domain with any of them, waiting ones first, at most
    SUGGESTION_POOL; then ranked per orphan by `score` in Python. Scores below
    MIN_SCORE are not suggested.
    """
    orphans = list(orphans)
    words, domains = set(), set()
    for orphan in orphans:
        local, domain = _split_email(orphan.email)
        words.update(_words(orphan.name))
        words.update(_words(local))
        if domain and domain not in FREE_MAIL_DOMAINS:
            domains.add(domain)
    found = Q()
    for word in sorted(words)[:30]:
        found |= Q(applicant_name__icontains=word) | Q(contact_email__icontains=word)
    for domain in sorted(domains)[:10]:
        found |= Q(contact_email__endswith=f"@{domain}")
    if not found:
        return {orphan.pk: [] for orphan in orphans}
    pool = list(
        cohort.applications.exclude(status__in=list(CLOSED)).filter(found)
        .order_by(_waiting_first(), "-updated_at", "pk")[:SUGGESTION_POOL]
    )
    ranked = {}
    for orphan in orphans:
        scored = sorted(((score(orphan, a), a) for a in pool), key=lambda pair: -pair[0])
        ranked[orphan.pk] = [a for s, a in scored if s >= MIN_SCORE][:limit]
    return ranked


def search_applications(cohort, text, *, limit=10):
    """Return up to `limit` of `cohort`'s applications whose name or email contains `text`.

    Waiting for an interview first, then new, then the rest (closed ones
    included, for the view to show as not matchable). Empty text finds nothing.
    """
    text = (text or "").strip()
    if not text:
        return []
    return list(cohort.applications.search(text).order_by(_waiting_first(), "applicant_name", "pk")[:limit])
