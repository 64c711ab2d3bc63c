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
