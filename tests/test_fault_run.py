"""The fault run of bench/fault_run.py, small: deliveries while PostgreSQL goes away, then drain and sweep.

PostgreSQL only and slow-ish, so it runs once in CI (the SQLite run skips it). The app's
connection is pointed at a port nobody listens on (never the shared server stopped), or
its backend is killed over and over while the deliveries arrive; afterwards the spool is
drained and the sweep run as beat would, and nothing may be lost, doubled or wrong.
"""

import hashlib
import socket
import threading
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from applications.models import Application, StatusChange
from scheduling import ingest, spool
from scheduling.models import SETTLED, WebhookDelivery

from .calcom_helpers import encode, post, sample, with_email

CHAINS = 40


def deliveries(cohort):
    """Return (bodies in sending order, {public_id: expected (status, booking uid)}) for CHAINS chains."""
    bodies, expected = [], {}
    for i in range(CHAINS):
        app = Application.objects.create(cohort=cohort, applicant_name=f"Applicant {i}",
                                         contact_email=f"fault{i}@example.org", status="waiting_first_round",
                                         current_stage="first_round")
        a, b, ical = f"fA{i:04d}xZp2RvT9wLbN4sH", f"fB{i:04d}xZp2RvT9wLbN4sH", f"fA{i:04d}@Cal.com"
        meta = {"application_id": app.public_id} if i % 2 else {}
        chain = [
            sample("booking_created", uid=a, iCalUID=ical, metadata=meta, createdAt=f"2026-06-02T10:00:{i % 60:02d}.000Z"),
            sample("booking_rescheduled", uid=b, rescheduleUid=a, iCalUID=ical,
                   createdAt=f"2026-06-03T10:00:{i % 60:02d}.000Z"),
        ]
        if i % 3 == 0:
            chain.append(sample("booking_cancelled", uid=b, iCalUID=ical,
                                createdAt=f"2026-06-04T10:00:{i % 60:02d}.000Z"))
        expected[app.public_id] = ("waiting_first_round", "") if i % 3 == 0 else ("first_round_scheduled", b)
        bodies.append([encode(with_email(body, f"fault{i}@example.org")) for body in chain])
    # Interleave the chains, keeping each chain's own order: step 1 of all, then step 2, ...
    ordered = [chain[k] for k in range(3) for chain in bodies if k < len(chain)]
    return ordered, expected


def finish_and_count(cohort, bodies, expected):
    """Drain and sweep as beat would; return (lost, doubled, unfinished, wrong)."""
    connections.close_all()
    spool.drain_spool()
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        ingest.sweep_deliveries(limit=10_000)
    stored = set(WebhookDelivery.objects.values_list("sha256", flat=True))
    lost = sum(1 for body in bodies if hashlib.sha256(body).hexdigest() not in stored)
    unfinished = WebhookDelivery.objects.exclude(outcome__in=SETTLED).count()
    wrong, doubled = [], 0
    for app in Application.objects.filter(cohort=cohort):
        if (app.status, app.interview_booking_uid) != expected[app.public_id]:
            wrong.append((app.public_id, app.status, app.interview_booking_uid))
        changes = StatusChange.objects.filter(application=app).count()
        doubled += changes > (2 if expected[app.public_id][0] == "waiting_first_round" else 1)
    return lost, doubled, unfinished, wrong


def send(client, cohort, body):
    # As at the start of a real request: a connection the last request broke is dropped.
    connection.close_if_unusable_or_obsolete()
    return post(client, cohort, body)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deliveries_while_postgres_is_unreachable_are_all_applied_once_after_drain_and_sweep(cohort):
    bodies, expected = deliveries(cohort)
    client = Client()
    assert send(client, cohort, encode(sample("ping"))).status_code == 200  # the process learns the secrets
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    real_port = connection.settings_dict["PORT"]
    third = len(bodies) // 3
    statuses = []
    try:
        for n, body in enumerate(bodies):
            if n == third:  # the middle third: unreachable
                connections.close_all()
                connection.settings_dict["PORT"] = dead_port
            if n == 2 * third:
                connections.close_all()
                connection.settings_dict["PORT"] = real_port
            statuses.append(send(client, cohort, body).status_code)
    finally:
        connection.settings_dict["PORT"] = real_port
    assert statuses.count(202) == third and set(statuses) == {200, 202}

    assert finish_and_count(cohort, bodies, expected) == (0, 0, 0, [])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deliveries_while_connections_are_killed_are_all_applied_once_after_drain_and_sweep(cohort):
    bodies, expected = deliveries(cohort)
    client = Client()
    assert send(client, cohort, encode(sample("ping"))).status_code == 200
    database = connection.settings_dict["NAME"]
    url = f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:" \
          f"{connection.settings_dict['PORT']}/postgres"
    stop, kills = threading.Event(), []

    def killer():
        with psycopg.connect(url, autocommit=True) as admin:
            while not stop.wait(0.02):
                kills.extend(admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()", [database]).fetchall())

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        statuses = [send(client, cohort, body).status_code for body in bodies]
    finally:
        stop.set()
        thread.join(10)
    assert kills and set(statuses) <= {200, 202, 500}

    assert finish_and_count(cohort, bodies, expected) == (0, 0, 0, [])
