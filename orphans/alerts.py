"""Orphan alerts: telling a cohort's admins about its orphaned interviews, at most once each.

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

import logging
from datetime import timedelta
from smtplib import SMTPException

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from applications.models import Cohort

from .emails import alert_messages, alert_recipients
from .models import OrphanedInterview

logger = logging.getLogger(__name__)

# The sweep leaves an alert to its own task this long (and a failed send this long before
# trying again); past it, the alert is overdue and the sweep sends it.
ALERT_GRACE = timedelta(minutes=2)
# At most one send per cohort in this window: while orphans keep arriving, each admin gets
# one email per cohort per window; what arrives meanwhile waits for the sweep after it.
ALERT_WINDOW = timedelta(minutes=10)


def send_alerts(cohort, orphans, *, now=None):
    """Claim and send the alerts of `orphans` (of `cohort`); return how many orphans went out.

    Each orphan is claimed first (OrphanedInterview.claim_alert); ones another
    sender holds are left alone, resolved ones are marked skipped. The rest go
    to every admin of the cohort's organization in one SMTP session: one email
    each, or one digest when there are more than emails.DIGEST_THRESHOLD.
    Nothing is claimed while the cohort's digest window is closed (a send in the
    last ALERT_WINDOW): those alerts stay pending for the sweep after it.
    On an SMTP error (smtplib.SMTPException, OSError) the claims are released
    with the error recorded (pending again, or failed after ALERT_MAX_ATTEMPTS)
    and the error is raised for the caller to retry. An organization without an
    admin email fails the alerts at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # One sender per cohort at a time decides the window and claims (the row lock queues
        # the others, who then see this send's claims); the email goes out after the commit.
        Cohort.objects.select_for_update(no_key=True).filter(pk=cohort.pk).first()
        if next_alert_at(cohort, now) > now:
            return 0
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


def next_alert_at(cohort, now):
    """Return the earliest aware datetime at which `cohort`'s alerts may be sent again.

    ALERT_WINDOW after the last send (or send in progress) of the cohort; `now`
    when there was none in the window.
    """
    state = OrphanedInterview.AlertState
    last = (OrphanedInterview.objects.filter(
        cohort=cohort, alert_state__in=[state.SENT, state.SENDING], alert_claimed_at__gt=now - ALERT_WINDOW)
        .order_by("-alert_claimed_at").values_list("alert_claimed_at", flat=True).first())
    return last + ALERT_WINDOW if last else now


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
