"""Concurrent deliveries on real PostgreSQL: the database settles every race."""

import threading

import pytest
from django.db import connections
from django.test import Client

from applications.models import Application, StatusChange
from orphans.models import OrphanedInterview
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import encode, post, post_together, sample, with_email
from .factories import ApplicationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_threads_posting_the_same_delivery_make_one_effect(cohort, ada):
    body = encode(sample("booking_created"))
    responses = post_together([body] * 20, cohort)
    assert all(r is not None and r.status_code == 200 for r in responses)
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 19
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().redeliveries == 19
    assert StatusChange.objects.filter(application=ada).count() == 1
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"


def test_twenty_threads_posting_twenty_bookings_apply_all_twenty(cohort):
    applications = [
        ApplicationFactory(cohort=cohort, contact_email=f"person{i}@example.org",
                           status="waiting_first_round")
        for i in range(20)
    ]
    bodies = []
    for i, application in enumerate(applications):
        uid = f"ConcurrentUid{i:09d}"
        data = sample("booking_created", uid=uid, iCalUID=f"{uid}@Cal.com", metadata={})
        bodies.append(encode(with_email(data, application.contact_email)))
    responses = post_together(bodies, cohort)
    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.json()["outcome"] == "applied" for r in responses)
    assert Application.objects.filter(cohort=cohort, status="first_round_scheduled").count() == 20
    assert Booking.objects.filter(cohort=cohort, application__isnull=False).count() == 20


def test_concurrent_copies_of_one_event_from_two_subscriptions_change_status_once(cohort, ada):
    bodies = [encode(sample("booking_created", createdAt=f"2026-06-02T16:21:07.{ms:03d}Z"))
              for ms in range(10)]
    responses = post_together(bodies, cohort)
    assert all(r.status_code == 200 for r in responses)
    assert StatusChange.objects.filter(application=ada).count() == 1
    assert Booking.objects.filter(uid="k7Qm3XyZp2RvT9wLbN4sHd").count() == 1


def test_concurrent_unmatched_copies_make_one_orphan(cohort):
    bodies = [encode(with_email(sample("booking_created", metadata={},
                                       createdAt=f"2026-06-02T16:21:07.{ms:03d}Z"), "who@example.org"))
              for ms in range(10)]
    responses = post_together(bodies, cohort)
    assert all(r.status_code == 200 for r in responses)
    assert OrphanedInterview.objects.filter(cohort=cohort).count() == 1


def test_create_and_cancel_racing_end_unscheduled_whatever_wins(cohort, ada):
    responses = post_together([encode(sample("booking_created")),
                              encode(sample("booking_cancelled", uid="k7Qm3XyZp2RvT9wLbN4sHd"))], cohort)
    assert all(r.status_code == 200 for r in responses)
    ada.refresh_from_db()
    assert ada.interview_booking_uid == ""
    assert ada.status == "waiting_first_round"


def test_a_cancel_racing_the_create_that_binds_its_booking_still_unschedules(cohort, monkeypatch):
    """The cancel matches nothing while the create (bound only by metadata) is uncommitted."""
    import time

    from scheduling import services

    ada = ApplicationFactory(cohort=cohort, contact_email="ada.lovelace@example.org",
                             public_id="app_7f3c2a91", status="waiting_first_round")
    created = with_email(sample("booking_created"), "ada.private@example.net")
    cancelled = with_email(sample("booking_cancelled", uid="k7Qm3XyZp2RvT9wLbN4sHd"), "ada.private@example.net")
    hold, real_sync = threading.Event(), services.sync_application

    def slow_sync(*args, **kwargs):
        if threading.current_thread().name == "create":
            hold.wait(10)  # the booking row is inserted, locked and not yet committed
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(services, "sync_application", slow_sync)
    responses = {}

    def run(name, body):
        try:
            responses[name] = post(Client(), cohort, body)
        finally:
            connections.close_all()

    first = threading.Thread(target=run, args=("create", encode(created)), name="create")
    first.start()
    time.sleep(0.5)
    second = threading.Thread(target=run, args=("cancel", encode(cancelled)), name="cancel")
    second.start()
    time.sleep(0.5)
    hold.set()
    first.join(20), second.join(20)
    assert responses["create"].status_code == 200 and responses["cancel"].status_code == 200
    ada.refresh_from_db()
    assert Booking.objects.get(uid="k7Qm3XyZp2RvT9wLbN4sHd").state == "cancelled"
    assert (ada.status, ada.interview_booking_uid) == ("waiting_first_round", "")
