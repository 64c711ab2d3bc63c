"""Celery tasks: invitations and reminders (scheduling.invitations); the webhook spool, the
delivery sweep and the Cal.com sync (issue 10). Thin wrappers, no logic here.

Publishing is best effort (orphans.tasks.BestEffortTask): a broker that is down
must not fail the admin's request or the webhook that moved an application. The
rows are already stored; `send_pending_invitations` (beat, every minute) sends
what was never published and makes the automatic invitations whose task was lost.
"""

import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from orphans.tasks import BestEffortTask

from . import ingest, invitations, spool
from .models import Invitation

logger = logging.getLogger(__name__)

# A pending invitation older than this was not picked up by its own task: the sweep sends it.
SWEEP_AFTER = timedelta(minutes=2)
# Failed sends are tried again by the sweep until this many attempts in all.
MAX_ATTEMPTS = 10
# Automatic invitations are made for entries into a waiting status this recent.
AUTOMATIC_WINDOW = timedelta(days=2)


@shared_task(
    base=BestEffortTask, bind=True,
    autoretry_for=(SMTPException, OSError), retry_backoff=30, retry_backoff_max=600,
    retry_jitter=True, max_retries=5,
)
def send_invitation(self, invitation_id):
    """Email Invitation `invitation_id`; SMTP errors retry with backoff (30 s … 10 min). Returns True if sent."""
    return invitations.deliver(invitation_id)


@shared_task(base=BestEffortTask)
def send_automatic_invitation(status_change_id):
    """Make and send the automatic invitation for StatusChange `status_change_id`; return its pk or None."""
    invitation = invitations.invite_on_entry(status_change_id)
    return invitation.pk if invitation else None


@shared_task
def send_reminders():
    """Send every reminder that is due (Celery beat, hourly); return how many."""
    return invitations.send_reminders()


@shared_task
def send_pending_invitations():
    """Send invitations stuck pending or failed, and automatic ones never made (beat, every minute).

    Returns (sent, made): invitations handed to `send_invitation`, automatic ones created.
    """
    from applications.models import StatusChange

    now = timezone.now()
    stuck = Invitation.objects.filter(
        created_at__lte=now - SWEEP_AFTER, attempts__lt=MAX_ATTEMPTS,
        state__in=[Invitation.State.PENDING, Invitation.State.FAILED],
    ).values_list("pk", flat=True)[:200]
    sent = 0
    for pk in stuck:
        send_invitation.delay(pk)
        sent += 1
    made = 0
    invited = Invitation.objects.filter(
        application=OuterRef("application"),
        entry=Concat(Value("sc"), Cast(OuterRef("pk"), output_field=CharField())),
    )
    entries = StatusChange.objects.filter(
        created_at__gte=now - AUTOMATIC_WINDOW, created_at__lte=now - SWEEP_AFTER,
        new_status__in=invitations.WAITING,
        application__cohort__rounds__auto_invite=True,
    ).filter(~Exists(invited)).values_list("pk", flat=True).distinct()[:200]
    for pk in entries:
        if invitations.invite_on_entry(pk) is not None:
            made += 1
    return sent, made


@shared_task
def drain_webhook_spool():
    """Import the bodies spooled during a database outage (beat, every minute); return a sentence."""
    report = spool.drain_spool()
    if report.total or report.dead or report.stopped:
        logger.info("Webhook spool: %s", report.summary())
    return report.summary()


@shared_task
def sweep_webhook_deliveries():
    """Apply again stuck and failed deliveries (beat, every minute); return {outcome: count}."""
    counts = ingest.sweep_deliveries()
    if counts:
        logger.info("Delivery sweep: %s", counts)
    return counts


@shared_task
def sync_calcom_cohort(run_pk):
    """Run the Cal.com sync `run_pk` (a SyncRun that `sync.start_sync` created); return its status."""
    from . import sync

    return sync.run_sync(run_pk).status


@shared_task
def sync_due_cohorts():
    """Start a sync for every cohort whose last one is CALCOM_SYNC_INTERVAL old (beat); return how many."""
    from . import sync
    from .models import SyncRun

    started = 0
    for cohort in sync.due_cohorts():
        try:
            run = sync.start_sync(cohort, trigger=SyncRun.Trigger.SCHEDULED)
        except sync.SyncError as exc:
            logger.info("Scheduled sync of %s skipped: %s", cohort, exc)
            continue
        sync_calcom_cohort.delay(run.pk)
        started += 1
    return started
