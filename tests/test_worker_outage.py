"""A real Celery worker (a process, as in docker-compose.yml) through a 30 s Redis restart.

The worker holds an orphan alert that waits out its countdown (unacknowledged, in
its ETA timer) when Redis stops. On celery 5.7.0 that killed it ("Unrecoverable
error: AttributeError: 'NoneType' object has no attribute 'hostname'", celery PR
#10242 closing a connection kombu had already collected); cohortos/celery.py's
BrokerLossConsumer configures around it. The worker must still be alive when Redis is back, reconnect by
itself, and run the next task; the alert then goes out through the sweep that
beat publishes every minute (the restarted Redis lost the countdown message).
"""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from orphans.models import OrphanedInterview

from .calcom_helpers import post, sample, with_email
from .redis_helpers import reset_publisher_pool, throwaway_broker  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent
OUTAGE_SECONDS = 30

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _wait(predicate, seconds, step=0.25):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def worker_process(throwaway_broker, tmp_path):
    """Start `celery -A cohortos worker` (prefork, 2 processes, as compose runs it) on the throwaway broker."""
    database = connection.settings_dict
    env = {**os.environ, "DEBUG": "1", "REDIS_URL": throwaway_broker.url, "CONN_MAX_AGE": "0",
           "DATABASE_URL": (f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:"
                            f"{database['PORT'] or 5432}/{database['NAME']}")}
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cohortos", "worker", "-l", "info", "--concurrency", "2",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )
    try:
        assert _wait(lambda: "ready." in log.read_text(errors="replace"), 60), log.read_text()
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.mark.django_db(transaction=True)
def test_the_worker_survives_a_30_second_redis_restart_while_an_alert_waits_out_its_countdown(
        client, cohort, throwaway_broker, worker_process):
    from cohortos.celery import app

    process, log = worker_process
    body = with_email(sample("booking_created", uid="OutageOrphanUid0000000", metadata={},
                             iCalUID="OutageOrphanUid0000000@Cal.com"), "stranger@example.org")
    assert post(client, cohort, body).json()["outcome"] == "orphaned"  # publishes the alert, 60 s countdown
    orphan = OrphanedInterview.objects.get(cohort=cohort)
    assert _wait(lambda: "send_orphan_alert" in log.read_text(errors="replace"), 20), log.read_text()

    throwaway_broker.stop()
    stopped = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    alive_during = process.poll() is None
    throwaway_broker.start()
    back = time.monotonic()

    reconnected = _wait(lambda: log.read_text(errors="replace").count("Connected to redis") >= 2, 60)
    reconnect_s = time.monotonic() - back
    text = log.read_text(errors="replace")
    assert alive_during and process.poll() is None, text[-3000:]
    assert "Unrecoverable error" not in text, text[-3000:]
    assert reconnected, text[-3000:]

    # What beat does every minute: publish the sweep. The alert is overdue by now (backdated past
    # the grace period instead of waiting two minutes), and the worker that lived through the
    # outage sends it.
    OrphanedInterview.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    reset_publisher_pool(app)
    app.send_task("orphans.tasks.send_pending_orphan_alerts")
    sent = _wait(lambda: OrphanedInterview.objects.get(pk=orphan.pk).alert_state == "sent", 60)
    alerted_s = time.monotonic() - back
    print(f"\nworker alive after a {time.monotonic() - stopped - (time.monotonic() - back):.0f} s Redis outage: "
          f"{process.poll() is None}; reconnected {reconnect_s:.1f} s after Redis was back; alert sent "
          f"{alerted_s:.1f} s after Redis was back: {sent}")
    assert sent, log.read_text(errors="replace")[-3000:]
