"""Celery tasks for orphan alerts: thin wrappers around orphans.alerts (no logic here).

Publishing is best effort on purpose: `record_orphan` runs inside a Cal.com
webhook, and a broker that is down (or hung) must neither fail nor slow it. The
orphan is already stored with alert_state "pending", so a message we could not
publish only delays its alert until the beat sweep (`send_pending_orphan_alerts`).
"""

import logging
import threading
import time
from functools import partial
from smtplib import SMTPException

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import transaction

from . import alerts

logger = logging.getLogger(__name__)

# How long an alert waits for others of the same cohort to pile up (a burst becomes one
# digest; see orphans.alerts). Eager mode (the quick start) ignores it and sends at once.
ALERT_COALESCE_SECONDS = 60
# After a failed publish, skip publishing for this long: a hung broker costs one request its
# socket timeout, not every request. The sweep sends what was skipped.
BROKER_RETRY_AFTER = 30.0


class _BrokerBreaker:
    """Remembers, per process, that the broker failed recently."""

    def __init__(self):
        self._lock = threading.Lock()
        self.down_until = 0.0

    def is_open(self):
        return time.monotonic() < self.down_until

    def trip(self):
        with self._lock:
            self.down_until = time.monotonic() + BROKER_RETRY_AFTER

    def reset(self):
        with self._lock:
            self.down_until = 0.0


broker_breaker = _BrokerBreaker()


class BestEffortTask(DjangoTask):
    """A DjangoTask whose `*_on_commit` publishing never raises into the request that asked.

    The publish error (kombu.exceptions.OperationalError for a broker that is
    down, a socket timeout for a hung one, or anything an eager run raises) is
    logged and swallowed; for BROKER_RETRY_AFTER seconds afterwards this process
    does not even try. Tasks using it must have a sweep that finds the skipped work.
    """

    def delay_on_commit(self, *args, **kwargs):
        """Publish `self.delay(*args, **kwargs)` after commit, at most logging a failure."""
        transaction.on_commit(partial(self._publish, args, kwargs))

    def apply_async_on_commit(self, args=None, kwargs=None, **options):
        """Publish `self.apply_async(args, kwargs, **options)` after commit, at most logging a failure."""
        transaction.on_commit(partial(self._publish, args or (), kwargs or {}, **options))

    def _publish(self, args, kwargs, **options):
        if broker_breaker.is_open() and not self.app.conf.task_always_eager:
            logger.warning("Broker was unreachable moments ago; %s%r left for the sweep", self.name, args)
            return None
        try:
            return self.apply_async(args, kwargs, **options)
        except Exception:
            if not self.app.conf.task_always_eager:
                broker_breaker.trip()
            logger.exception("Could not run or publish %s%r; left for the sweep", self.name, args)
            return None


@shared_task(
    base=BestEffortTask, bind=True,
    autoretry_for=(SMTPException, OSError), retry_backoff=30, retry_backoff_max=600,
    retry_jitter=True, max_retries=5,
)
def send_orphan_alert(self, orphan_id):
    """Email the admins about orphan `orphan_id` (and any other pending alert of its cohort).

    Returns how many orphans were announced (0 when another run already did).
    SMTP errors are recorded on the orphans and retried with exponential
    backoff (30 s … 10 min); after the last retry the sweep keeps trying until
    ALERT_MAX_ATTEMPTS.
    """
    return alerts.send_cohort_alerts(orphan_id)


@shared_task
def send_pending_orphan_alerts():
    """Send every orphan alert still pending after alerts.ALERT_GRACE (Celery beat, every minute)."""
    return alerts.send_pending_alerts()
