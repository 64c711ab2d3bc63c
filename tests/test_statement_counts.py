"""Statement budgets of the webhook (issue 15), so they cannot creep back; and the key → cohort cache.

Counted around the whole request with autocommit as in production
(`transaction=True`): BEGIN, COMMIT and the after-commit version bump count too,
the way bench/statements.py counts them. Issue 13's audit adds its own rows on top
of the apply's budget: one timeline entry per applied booking event (AUDIT_ROWS).
"""

import pytest
from django.db import connection

from applications.models import Application, Cohort, StatusChange
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import encode, post, sample, with_email
from .factories import ApplicationFactory

pytestmark = pytest.mark.django_db(transaction=True)

# The timeline entry (applications.TimelineEntry) issue 13 writes for every applied booking event.
AUDIT_ROWS = 1


def created_for(uid, email):
    return encode(with_email(sample("booking_created", uid=uid, iCalUID=f"{uid}@Cal.com", metadata={}), email))


@pytest.fixture(autouse=True)
def _long_cache(settings):
    # A slow, shared CI machine must not let the 5 s cache lapse between warm-up and count.
    settings.WEBHOOK_COHORT_CACHE_SECONDS = 300


@pytest.fixture
def warm(client, cohort):
    """A webhook of another applicant first, as a running server has had: the cohort is cached."""
    ApplicationFactory(cohort=cohort, contact_email="grace@example.org", status="waiting_first_round")
    assert post(client, cohort, created_for("WarmUpUid0000000000001", "grace@example.org")).status_code == 200


def test_a_created_booking_matched_by_email_takes_at_most_12_statements(
        client, cohort, ada, warm, django_assert_max_num_queries):
    with django_assert_max_num_queries(12 + AUDIT_ROWS):
        response = post(client, cohort, created_for("EmailUid00000000000001", "ada.lovelace@example.org"))
    assert response.json()["outcome"] == "applied"
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == "EmailUid00000000000001"
    assert StatusChange.objects.filter(application=ada).count() == 1


def test_a_cold_process_reads_the_cohort_and_its_rounds_once_more(client, cohort, ada, django_assert_max_num_queries):
    # + 1: the spool's secret cache (issue 10) reads every cohort's secret once a minute per process.
    with django_assert_max_num_queries(14 + AUDIT_ROWS + 1):
        response = post(client, cohort, created_for("EmailUid00000000000002", "ada.lovelace@example.org"))
    assert response.json()["outcome"] == "applied"


def test_a_byte_identical_redelivery_takes_one_statement_on_postgresql(
        client, cohort, ada, warm, django_assert_max_num_queries):
    body = created_for("EmailUid00000000000003", "ada.lovelace@example.org")
    assert post(client, cohort, body).json()["outcome"] == "applied"

    # The issue allows 3. On PostgreSQL it is one statement (the INSERT and the counter's UPDATE
    # in one CTE, scheduling.rows.insert_or_count); SQLite, without data-modifying CTEs, takes two.
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 2):
        response = post(client, cohort, body)
    assert response.json()["outcome"] == "duplicate"
    delivery = WebhookDelivery.objects.get(booking_uid="EmailUid00000000000003")
    assert delivery.redeliveries == 1 and delivery.outcome == "applied"
    assert Booking.objects.filter(uid="EmailUid00000000000003").count() == 1


def test_a_reschedule_matched_through_the_chain_takes_at_most_11_statements(
        client, cohort, ada, warm, django_assert_max_num_queries):
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    # + 1: the timeline line of a reschedule reads the time it moved from (issue 13).
    with django_assert_max_num_queries(11 + AUDIT_ROWS + 1):
        response = post(client, cohort, sample("booking_rescheduled"))
    assert response.json()["outcome"] == "applied"


def test_a_rotated_secret_takes_effect_at_once(client, cohort, ada, warm):
    old = Cohort.objects.get(pk=cohort.pk)  # a copy holding the old secret
    cohort.rotate_webhook_secret()

    assert post(client, old, sample("booking_created")).status_code == 403
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"


def test_a_secret_rotated_by_another_process_is_accepted_at_once(client, cohort, ada, warm):
    # Another process rotated it: no save signal reached this process's cache.
    Cohort.objects.filter(pk=cohort.pk).update(webhook_secret="rotated-elsewhere")
    cohort.webhook_secret = "rotated-elsewhere"

    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    assert Application.objects.get(pk=ada.pk).status == "first_round_scheduled"


def test_an_archived_cohort_answers_410_at_once(client, cohort, ada, warm):
    Cohort.objects.get(pk=cohort.pk).archive()  # a save: this process forgets its cached copy

    assert post(client, cohort, sample("booking_created")).status_code == 410
    assert Application.objects.get(pk=ada.pk).status == "waiting_first_round"
