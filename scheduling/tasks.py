"""Celery tasks for scheduling: thin wrappers around ingest, spool and sync (no logic here)."""

import logging

from celery import shared_task

from . import ingest, spool

logger = logging.getLogger(__name__)


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
