"""The disk spool (database outages), its drain, and the sweep of stuck and failed deliveries."""

import logging
import os
import socket
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.utils import timezone

from applications.models import Application, StatusChange
from scheduling import ingest, spool, views
from scheduling.models import Booking, Outcome, WebhookDelivery

from .calcom_helpers import encode, post, sample
from .threads import run_together

OLD_UID = "k7Qm3XyZp2RvT9wLbN4sHd"


def ready_files():
    return sorted(os.listdir(spool.spool_dir() / "ready"))


def database_down(monkeypatch, where="receive"):
    """Make the view meet an unreachable database at `where`: "lookup" (the cohort) or "receive"."""
    def fail(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 1 failed: Connection refused")

    if where == "lookup":
        # The cohort lookup (scheduling/webhook_keys.py, which may also answer from its cache).
        monkeypatch.setattr(views, "cohort_for_key", fail)
    else:
        monkeypatch.setattr(views, "receive_delivery", fail)


# --- the spool itself --------------------------------------------------------------------


def test_a_spooled_body_is_written_whole_and_read_back_byte_for_byte(settings):
    body = encode(sample("booking_created"))
    path = spool.spool_delivery("calcom", "key-1", body, "abc123")

    assert path.parent.name == "ready" and ready_files() == [path.name]
    assert os.listdir(spool.spool_dir() / "tmp") == []
    spooled = spool.read_spooled(path)
    assert (spooled.provider, spooled.webhook_key, spooled.signature) == ("calcom", "key-1", "abc123")
    assert spooled.body == body


def test_spooled_files_sort_in_arrival_order():
    names = [spool.spool_delivery("calcom", "k", f"body {i}".encode(), "s").name for i in range(20)]
    assert ready_files() == names


def test_the_spool_refuses_past_its_file_bound(settings):
    settings.WEBHOOK_SPOOL_MAX_FILES = 2
    spool.spool_delivery("calcom", "k", b"one", "s")
    spool.spool_delivery("calcom", "k", b"two", "s")
    with pytest.raises(spool.SpoolFull):
        spool.spool_delivery("calcom", "k", b"three", "s")
    assert len(ready_files()) == 2


def test_the_spool_refuses_past_its_byte_bound(settings):
    settings.WEBHOOK_SPOOL_MAX_BYTES = 600
    spool.spool_delivery("calcom", "k", b"x" * 200, "s")
    with pytest.raises(spool.SpoolFull):
        spool.spool_delivery("calcom", "k", b"x" * 300, "s")


# --- the view while the database is down -------------------------------------------------


def test_a_verified_body_is_spooled_and_answered_202_when_the_database_fails(client, cohort, ada, monkeypatch):
    database_down(monkeypatch, "receive")
    response = post(client, cohort, sample("booking_created"))

    assert response.status_code == 202
    assert response.json()["outcome"] == "spooled"
    assert len(ready_files()) == 1
    assert WebhookDelivery.objects.count() == 0


def test_with_the_database_down_before_the_lookup_the_remembered_secret_verifies(client, cohort, ada, monkeypatch):
    assert post(client, cohort, sample("ping")).status_code == 200  # the process learns the secret
    database_down(monkeypatch, "lookup")

    response = post(client, cohort, sample("booking_created"))

    assert response.status_code == 202 and response.json()["outcome"] == "spooled"
    assert len(ready_files()) == 1


def test_an_unverifiable_body_is_not_spooled(client, cohort, ada, monkeypatch):
    assert post(client, cohort, sample("ping")).status_code == 200
    database_down(monkeypatch, "lookup")

    response = post(client, cohort, sample("booking_created"), signature="0" * 64)

    assert response.status_code == 403
    assert "does not match" in response.json()["error"]
    assert ready_files() == []


def test_a_forged_body_is_not_spooled_when_the_database_fails_on_the_fresh_secret_check(
        client, cohort, ada, monkeypatch):
    """Regression: a signature that failed against the cached cohort sent the view to read the
    cohort afresh; when that read failed, the unverified body was spooled (and later applied)."""
    assert post(client, cohort, sample("ping")).status_code == 200  # cached cohort, remembered secret
    cached = views.cohort_for_key

    def fresh_read_fails(key, *, fresh=False):
        if fresh:
            raise OperationalError("connection to server at 127.0.0.1, port 1 failed: Connection refused")
        return cached(key)

    monkeypatch.setattr(views, "cohort_for_key", fresh_read_fails)
    response = post(client, cohort, sample("booking_created"), signature="0" * 64)

    assert response.status_code == 403
    assert ready_files() == []


def test_a_key_not_seen_recently_cannot_be_verified_so_it_is_503_and_not_spooled(client, cohort, ada, monkeypatch):
    database_down(monkeypatch, "lookup")
    response = post(client, cohort, sample("booking_created"))

    assert response.status_code == 503
    error = response.json()["error"]
    assert "Retry" not in error and "does not retry" in error
    assert ready_files() == []


def test_the_remembered_secret_expires(client, cohort, ada, monkeypatch, settings):
    assert post(client, cohort, sample("ping")).status_code == 200
    database_down(monkeypatch, "lookup")
    settings.WEBHOOK_SECRET_CACHE_SECONDS = 60
    now = spool.time.monotonic()
    monkeypatch.setattr(spool.time, "monotonic", lambda: now + 61)
    assert post(client, cohort, sample("booking_created")).status_code == 503


def test_a_full_spool_answers_503_and_logs_it(client, cohort, ada, monkeypatch, settings, caplog):
    settings.WEBHOOK_SPOOL_MAX_FILES = 0
    database_down(monkeypatch, "receive")
    with caplog.at_level(logging.ERROR, logger="scheduling.views"):
        response = post(client, cohort, sample("booking_created"))

    assert response.status_code == 503
    assert "could not be kept" in response.json()["error"]
    assert any("spool is full" in r.getMessage() for r in caplog.records)


# --- the drain ---------------------------------------------------------------------------


def test_the_drain_applies_spooled_bodies_once_and_deletes_their_files(client, cohort, ada, monkeypatch):
    database_down(monkeypatch, "receive")
    for _ in range(2):  # the same body twice: Cal.com's per-subscription copies, or a retry
        assert post(client, cohort, sample("booking_created")).status_code == 202
    monkeypatch.undo()

    call_command("drain_webhook_spool", stdout=open(os.devnull, "w"))

    assert ready_files() == [] and os.listdir(spool.spool_dir() / "claimed") == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == Outcome.APPLIED and delivery.redeliveries == 1
    assert StatusChange.objects.filter(application=ada).count() == 1
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == OLD_UID


def test_a_drain_that_meets_the_database_still_down_keeps_the_file(cohort, ada, monkeypatch):
    spool.spool_delivery("calcom", cohort.webhook_key, encode(sample("booking_created")), "s")

    def down(spooled):
        raise OperationalError("still down")

    monkeypatch.setattr(ingest, "receive_spooled", down)
    report = spool.drain_spool()

    assert report.total == 0 and report.left == 1 and "database unavailable" in report.stopped
    assert len(ready_files()) == 1
    monkeypatch.undo()
    assert spool.drain_spool().imported == {"applied": 1}
    assert ready_files() == []


def test_a_spooled_body_for_a_key_that_no_longer_exists_goes_to_dead(cohort, ada):
    spool.spool_delivery("calcom", "no-such-key", encode(sample("booking_created")), "s")
    report = spool.drain_spool()

    assert report.dead == 1 and ready_files() == []
    assert spool.dead_count() == 1
    assert "dead/" in report.summary()


def test_a_claim_left_by_a_drainer_that_died_is_released(cohort, ada):
    path = spool.spool_delivery("calcom", cohort.webhook_key, encode(sample("booking_created")), "s")
    claimed = spool.spool_dir() / "claimed" / path.name
    os.rename(path, claimed)
    old = timezone.now().timestamp() - spool.STALE_CLAIM_SECONDS - 5
    os.utime(claimed, (old, old))

    assert spool.drain_spool().imported == {"applied": 1}
    assert not claimed.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drainers_at_once_never_apply_a_body_twice(cohort):
    applications = [
        Application.objects.create(cohort=cohort, applicant_name=f"A {i}", contact_email=f"a{i}@example.org",
                                   status="waiting_first_round", current_stage="first_round")
        for i in range(30)
    ]
    for i, application in enumerate(applications):
        body = sample("booking_created", uid=f"uid{i:04d}", iCalUID=f"uid{i:04d}@Cal.com",
                      metadata={"application_id": application.public_id})
        spool.spool_delivery("calcom", cohort.webhook_key, encode(body), "s")

    reports = run_together(spool.drain_spool, spool.drain_spool)

    assert all(isinstance(r, spool.DrainReport) for r in reports), reports
    assert sum(r.total for r in reports) == 30
    assert ready_files() == []
    assert WebhookDelivery.objects.count() == 30
    assert WebhookDelivery.objects.filter(outcome="applied", redeliveries=0).count() == 30
    assert StatusChange.objects.count() == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_postgres_unreachable_deliveries_are_spooled_then_drained_exactly_once(client, cohort, ada):
    """A real outage: the app's connection points at a port nobody listens on."""
    assert post(client, cohort, sample("ping")).status_code == 200
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    settings_dict = connection.settings_dict
    real_port = settings_dict["PORT"]
    connections.close_all()
    settings_dict["PORT"] = dead_port
    try:
        answers = [post(client, cohort, sample(name)) for name in
                   ("booking_created", "booking_rescheduled", "booking_cancelled")]
    finally:
        connections.close_all()
        settings_dict["PORT"] = real_port
    assert [(r.status_code, r.json()["outcome"]) for r in answers] == [(202, "spooled")] * 3
    assert WebhookDelivery.objects.exclude(trigger_event="PING").count() == 0

    report = spool.drain_spool()

    assert report.imported == {"applied": 3} and ready_files() == []
    assert spool.drain_spool().total == 0
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round" and ada.interview_booking_uid == ""
    assert [(c.old_status, c.new_status) for c in StatusChange.objects.filter(application=ada).order_by("pk")] == [
        ("waiting_first_round", "first_round_scheduled"), ("first_round_scheduled", "waiting_first_round")]


# --- the sweep ---------------------------------------------------------------------------


def stored(cohort, name="booking_created", **overrides):
    """Store a delivery as the view would, without applying it (an apply that never ran)."""
    import hashlib

    body = encode(sample(name, **overrides))
    return WebhookDelivery.objects.create(cohort=cohort, body=body, sha256=hashlib.sha256(body).hexdigest(),
                                          trigger_event=name.upper())


def test_a_delivery_stuck_in_received_for_two_minutes_is_applied_by_the_sweep(cohort, ada):
    delivery = stored(cohort)
    assert ingest.sweep_deliveries() == {}  # just arrived: its own request may still be applying it

    with time_machine.travel(timezone.now() + timedelta(minutes=2, seconds=1)):
        assert ingest.delivery_health(cohort)["stuck"] == 1
        assert ingest.sweep_deliveries() == {"applied": 1}
        assert ingest.delivery_health(cohort) == {"stuck": 0, "failed": 0, "gave_up": 0}
    delivery.refresh_from_db()
    assert delivery.outcome == "applied" and delivery.attempts == 1
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"


def test_a_failed_delivery_is_retried_with_backoff_until_the_limit(cohort, ada, monkeypatch, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("bug in apply")

    monkeypatch.setattr(ingest, "apply_booking_event", broken)
    delivery = stored(cohort)
    ingest.process_delivery(delivery)
    delivery.refresh_from_db()
    assert delivery.outcome == "failed" and delivery.attempts == 1

    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert ingest.sweep_deliveries() == {"failed": 1}
        assert ingest.sweep_deliveries() == {}  # backing off
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.next_attempt_at == start + ingest.retry_delay(2)
    with time_machine.travel(start + timedelta(minutes=2, seconds=1), tick=False):
        assert ingest.sweep_deliveries() == {"failed": 1}
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        assert ingest.sweep_deliveries() == {}  # three attempts: given up
        assert ingest.delivery_health(cohort) == {"stuck": 0, "failed": 0, "gave_up": 1}
    assert len(calls) == 3

    monkeypatch.undo()  # fixed: the admin reprocesses it by hand
    call_command("reprocess_webhooks", "--id", str(delivery.pk), stdout=open(os.devnull, "w"))
    delivery.refresh_from_db()
    assert delivery.outcome == "applied" and delivery.attempts == 4


def test_a_sweep_skips_a_delivery_another_sweep_claimed_first(cohort, ada):
    delivery = stored(cohort)
    later = timezone.now() + timedelta(minutes=3)
    due = list(ingest.due_for_retry(later))
    assert due == [delivery]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1)  # the other sweep's claim

    original = ingest.due_for_retry
    ingest.due_for_retry = lambda now=None: due
    try:
        assert ingest.sweep_deliveries(later) == {}
    finally:
        ingest.due_for_retry = original
    assert Booking.objects.count() == 0


def test_the_sweep_and_drain_tasks_run_their_services(cohort, ada):
    from scheduling import tasks

    spool.spool_delivery("calcom", cohort.webhook_key, encode(sample("booking_created")), "s")
    assert tasks.drain_webhook_spool.delay().get().startswith("Imported 1 (1 applied)")
    stored(cohort, "booking_cancelled")
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert tasks.sweep_webhook_deliveries.delay().get() == {"applied": 1}


def test_a_warmed_process_verifies_a_cohort_it_never_served_while_the_database_is_down(client, cohort, ada,
                                                                                       monkeypatch):
    assert spool.warm_secret_cache() >= 1
    database_down(monkeypatch, "lookup")

    response = post(client, cohort, sample("booking_created"))

    assert response.status_code == 202 and response.json()["outcome"] == "spooled"


def test_warming_with_the_database_down_keeps_the_cache_and_does_not_raise(cohort, monkeypatch):
    from django.db import DatabaseError

    from applications.models import Cohort

    def down(*args, **kwargs):
        raise DatabaseError("down")

    spool.secret_cache.remember("remembered-key", "its secret")
    monkeypatch.setattr(Cohort.objects, "values_list", down)
    assert spool.warm_secret_cache() == 0
    assert spool.secret_cache.get("remembered-key") == "its secret"


def test_a_calendly_delivery_is_not_spooled_since_calendly_retries_it(client, cohort, ada, monkeypatch):
    from .calendly_helpers import SIGNING_KEY, calendly_sample, post_calendly

    cohort.calendly_signing_key = SIGNING_KEY
    cohort.save()
    database_down(monkeypatch, "receive")

    response = post_calendly(client, cohort, calendly_sample("invitee_created"))
    assert response.status_code == 503 and "retries" in response.json()["error"]
    assert ready_files() == []


def test_a_cronofy_delivery_is_spooled_with_its_provider_and_drained_through_it(client, cohort, ada, monkeypatch):
    from .calendly_helpers import CRONOFY_SECRET, post_cronofy, time_chosen

    cohort.cronofy_client_secret = CRONOFY_SECRET
    cohort.save()
    assert post(client, cohort, sample("ping")).status_code == 200  # learns every secret of the key
    database_down(monkeypatch, "lookup")

    assert post_cronofy(client, cohort, time_chosen(), signature="AAAA").status_code == 403
    response = post_cronofy(client, cohort, time_chosen())
    assert response.status_code == 202 and response.json()["outcome"] == "spooled"
    monkeypatch.undo()

    assert spool.drain_spool().imported == {"applied": 1}
    delivery = WebhookDelivery.objects.get(provider="cronofy")
    assert delivery.outcome == "applied" and delivery.application == ada
