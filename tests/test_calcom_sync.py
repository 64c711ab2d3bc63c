"""Reconciliation with Cal.com API v2 (faked with `responses`; nothing contacts Cal.com)."""

import os
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from django.core.management import CommandError, call_command
from django.db import connection

from applications.models import Application, StatusChange, TimelineEntry
from orphans.models import OrphanedInterview
from scheduling import sync
from scheduling.events import BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_REQUESTED, BOOKING_RESCHEDULED
from scheduling.models import Booking, SyncRun
from scheduling.providers import calcom_api

from .calcom_api_fake import API_KEY, FakeCalcomApi, error_body, sample_bookings
from .calcom_helpers import post, sample
from .factories import ApplicationFactory

UTC = timezone.utc
API = "https://api.cal.com/v2"
ADA_OLD, ADA_NEW = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya"
ADA_ICAL = "k7Qm3XyZp2RvT9wLbN4sHd@Cal.com"
# (public id, name, email) of the API samples' applicants.
SAMPLE_PEOPLE = [
    ("app_3c8e51f0", "Rosalind Franklin", "rosalind.franklin@example.com"),
    ("app_5e19c7a2", "Alan Turing", "alan.turing@example.com"),
    ("app_9b04d6e3", "Lise Meitner", "lise.meitner@example.com"),
    ("app_71fa2c58", "Chien-Shiung Wu", "chien-shiung.wu@example.com"),
    ("app_d2c7e940", "Hedy Lamarr", "hedy.lamarr@example.com"),
    ("app_0a6b3d11", "Srinivasa Ramanujan", "srinivasa.ramanujan@example.com"),
]


@pytest.fixture(autouse=True)
def _in_june_2026():
    """The samples' week: their bookings were made and changed within the last 30 days."""
    import time_machine

    with time_machine.travel(datetime(2026, 6, 7, 12, 0, tzinfo=UTC)):
        yield


@pytest.fixture
def keyed(cohort):
    cohort.set_calcom_api_key(API_KEY)
    return cohort


@pytest.fixture
def people(keyed):
    return {
        name: ApplicationFactory(cohort=keyed, public_id=public_id, applicant_name=name, contact_email=email,
                                 status="waiting_first_round", current_stage="first_round")
        for public_id, name, email in SAMPLE_PEOPLE
    }


@pytest.fixture
def fake():
    api = FakeCalcomApi()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api.register(rsps, API)
        api.rsps = rsps
        yield api


def ada_booking(uid, status, *, start, created, updated, rescheduled_from=None, rescheduled_to=None,
                reason="", cancelled_by=""):
    """Return Ada's booking `uid` in API v2's shape (built on a sample booking object)."""
    booking = sample_bookings()[0]
    booking.update(
        id=sum(map(ord, uid)), uid=uid, status=status, start=start, end=_plus_30(start), createdAt=created, updatedAt=updated, icsUid=ADA_ICAL,
        title="First-round interview between Dorothy Vaughan and Ada Lovelace",
        metadata={"application_id": "app_7f3c2a91"}, cancellationReason=reason, cancelledByEmail=cancelled_by,
        location="https://meet.google.com/xqv-trbn-kfo", meetingUrl="https://meet.google.com/xqv-trbn-kfo",
    )
    booking["attendees"][0].update(name="Ada Lovelace", email="ada.lovelace@example.org",
                                   displayEmail="ada.lovelace@example.org", timeZone="Europe/London")
    booking["bookingFieldsResponses"].update(name="Ada Lovelace", email="ada.lovelace@example.org")
    if rescheduled_from:
        booking["rescheduledFromUid"] = rescheduled_from
    if rescheduled_to:
        booking["rescheduledToUid"] = rescheduled_to
    return booking


def _plus_30(start):
    moment = datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(minutes=30)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ada_rescheduled_then(api_status_of_new="accepted", reason=""):
    """Ada's chain as the API lists it after a reschedule (old cancelled → new)."""
    return [
        ada_booking(ADA_OLD, "cancelled", start="2026-06-09T14:00:00.000Z", created="2026-06-02T16:21:07.000Z",
                    updated="2026-06-05T09:14:21.000Z", rescheduled_to=ADA_NEW),
        ada_booking(ADA_NEW, api_status_of_new, start="2026-06-11T15:00:00.000Z",
                    created="2026-06-05T09:14:21.100Z", updated="2026-06-07T10:00:00.000Z"
                    if api_status_of_new == "cancelled" else "2026-06-05T09:14:21.300Z",
                    rescheduled_from=ADA_OLD, reason=reason,
                    cancelled_by="ada.lovelace@example.org" if api_status_of_new == "cancelled" else ""),
    ]


def run(cohort, trigger=SyncRun.Trigger.MANUAL):
    return sync.run_sync(sync.start_sync(cohort, trigger=trigger).pk)


def full_recheck(cohort):
    """A sync of the last 30 days (`sync_calcom --days 30`), not just what changed since the last one."""
    return sync.run_sync(sync.start_sync(cohort, trigger=SyncRun.Trigger.MANUAL).pk,
                         since=datetime(2026, 6, 7, 12, 0, tzinfo=UTC) - timedelta(days=30))


def state(application):
    application.refresh_from_db()
    return (application.status, application.interview_booking_uid, application.interview_start,
            application.pending_booking_uid, application.reschedule_requested)


# --- one booking object → one BookingEvent ----------------------------------------------


def test_each_sample_booking_becomes_the_event_its_webhook_would_have_been():
    by_uid = {b["uid"]: b for b in sample_bookings()}
    rosalind = calcom_api.booking_event(by_uid["FDTV97uCgVYbQq57kJUMBn"])
    assert rosalind.trigger == BOOKING_CREATED and rosalind.application_id == "app_3c8e51f0"
    assert rosalind.start == datetime(2026, 6, 8, 15, 0, tzinfo=UTC)
    assert rosalind.created_at == datetime(2026, 6, 1, 10, 2, 14, 902000, tzinfo=UTC)
    assert rosalind.meeting_url == "https://meet.google.com/hvb-qzmr-tdo"
    assert rosalind.email == "rosalind.franklin@example.com" and rosalind.time_zone == "Europe/London"
    assert rosalind.title == "First-round interview" and rosalind.event_type == "first-round-interview"
    assert rosalind.ical_uid == "FDTV97uCgVYbQq57kJUMBn@Cal.com" and rosalind.ical_sequence is None

    moved = by_uid["pyjeWtWwSWpmvFyZnJpEhS"]
    assert calcom_api.moved_to(moved) == "kxsebLbgvomQpCkGBix8A6"
    alan = calcom_api.booking_event(by_uid["kxsebLbgvomQpCkGBix8A6"])
    # Accepted with the reschedule reason in cancellationReason (§0): not a cancellation.
    assert alan.trigger == BOOKING_RESCHEDULED and alan.reschedule_uid == "pyjeWtWwSWpmvFyZnJpEhS"
    assert alan.reason == "" and alan.ical_uid == "pyjeWtWwSWpmvFyZnJpEhS@Cal.com"

    lise = calcom_api.booking_event(by_uid["cU9bD1barsaffuSJrYuuSx"])
    assert lise.trigger == BOOKING_CANCELLED and lise.reason.startswith("I have accepted an offer")
    assert not lise.request_reschedule

    wu = calcom_api.booking_event(by_uid["EaDdoFTFD5aQgj8K5fvCgR"])
    assert wu.trigger == BOOKING_REQUESTED and wu.meeting_url == ""  # integrations:google:meet is no URL

    hedy = calcom_api.booking_event(by_uid["Zoibw8B4HoSwHF1BXNBaTB"])
    assert hedy.trigger == BOOKING_CANCELLED and hedy.request_reschedule

    ramanujan = calcom_api.booking_event(by_uid["TE49Sf71rrxRS2nLrRFRUS"])
    assert ramanujan.application_id == "" and ramanujan.meeting_url.startswith("https://app.cal.com/video/")


def test_a_booking_without_what_an_event_needs_is_skipped():
    booking = sample_bookings()[0]
    assert calcom_api.booking_event({**booking, "start": "tomorrow"}) is None
    assert calcom_api.booking_event({**booking, "status": "awaiting_host"}) is None
    assert calcom_api.booking_event({**booking, "attendees": [], "bookingFieldsResponses": {}}) is None


# --- the client ----------------------------------------------------------------------------


def test_the_client_sends_key_and_version_header_and_pages_until_a_short_page(fake):
    client = calcom_api.CalcomClient(API_KEY, base_url=API)
    since = datetime(2026, 5, 1, tzinfo=UTC)
    uids = [b["uid"] for b in client.bookings(since=since, page_size=3)]

    assert len(uids) == 7 and len(set(uids)) == 7
    calls = fake.rsps.calls
    assert all(c.request.headers["cal-api-version"] == "2024-08-13" for c in calls)
    assert all(c.request.headers["Authorization"] == f"Bearer {API_KEY}" for c in calls)
    # 7 bookings, pages of 3: 3 requests per sweep (created, then updated).
    assert [(r.get("skip"), "afterCreatedAt" in r) for r in fake.requests] == [
        ("0", True), ("3", True), ("6", True), ("0", False), ("3", False), ("6", False)]
    assert fake.requests[0]["afterCreatedAt"] == "2026-05-01T00:00:00.000Z"
    assert fake.requests[0]["sortCreated"] == "asc" and fake.requests[3]["sortUpdatedAt"] == "asc"


def test_every_request_has_a_timeout(monkeypatch, fake):
    client = calcom_api.CalcomClient(API_KEY, base_url=API, timeout=7.5)
    seen = []
    original = client.session.get

    def spy(*args, **kwargs):
        seen.append(kwargs.get("timeout"))
        return original(*args, **kwargs)

    monkeypatch.setattr(client.session, "get", spy)
    list(client.bookings(since=datetime(2026, 5, 1, tzinfo=UTC)))
    assert seen and all(t == 7.5 for t in seen)


def test_the_event_type_filter_is_sent_as_cal_com_names_it(fake):
    client = calcom_api.CalcomClient(API_KEY, base_url=API)
    uids = {b["uid"] for b in client.bookings(since=datetime(2026, 5, 1, tzinfo=UTC), event_type_ids=(90419, 90418))}
    assert fake.requests[0]["eventTypeIds"] == "90418,90419"
    assert uids == {"EaDdoFTFD5aQgj8K5fvCgR", "TE49Sf71rrxRS2nLrRFRUS"}


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_stops_with_a_clear_sentence(status):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json=error_body("error_401"), status=status)
        with pytest.raises(calcom_api.CalcomApiError) as caught:
            calcom_api.CalcomClient("cal_wrong", base_url=API).get("/bookings", {})
        assert len(rsps.calls) == 1  # not retried
    assert str(caught.value).startswith("The Cal.com API key was refused")
    assert caught.value.status == status


def test_another_4xx_stops_with_cal_com_s_message():
    body = {"status": "error", "timestamp": "2026-06-01T00:00:00.000Z", "path": "/v2/bookings",
            "error": {"code": "TRPCError", "message": "The requested event-types do not exist."}}
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json=body, status=400)
        with pytest.raises(calcom_api.CalcomApiError, match="HTTP 400: The requested event-types do not exist."):
            calcom_api.CalcomClient(API_KEY, base_url=API).get("/bookings", {})


def test_429_and_5xx_are_retried_then_succeed(fake):
    rsps = fake.rsps
    # Queue failures ahead of the fake's callback: responses serves matches in registration order.
    rsps.reset()
    rsps.get(f"{API}/bookings", json=error_body("error_429"), status=429,
             headers={"X-RateLimit-Reset-Default": "0"})
    rsps.get(f"{API}/bookings", json={"status": "error"}, status=502)
    fake.register(rsps, API)
    client = calcom_api.CalcomClient(API_KEY, base_url=API)
    client.session.adapters["https://"].max_retries.backoff_factor = 0
    data = client.get("/bookings", {"take": 100})
    assert data["status"] == "success" and len(data["data"]) == 7
    assert [c.response.status_code for c in rsps.calls] == [429, 502, 200]


def test_5xx_that_persists_fails_after_the_retries():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json={"status": "error"}, status=503)
        client = calcom_api.CalcomClient(API_KEY, base_url=API)
        with pytest.raises(calcom_api.CalcomApiError, match="HTTP 503"):
            client.get("/bookings", {})
        assert len(rsps.calls) == 5  # the first try and four retries


def test_a_429_waits_for_the_rate_limit_reset_header_not_retry_after():
    from urllib3 import HTTPResponse

    retry = calcom_api.make_session(API_KEY).adapters["https://"].max_retries
    limited = HTTPResponse(status=429, headers={"X-RateLimit-Reset-Default": "60", "X-RateLimit-Reset-Short": "12"})
    assert retry.get_retry_after(limited) == 12  # refused only while every named limit is blocked
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"X-RateLimit-Reset-Default": "999"})) == 90
    assert retry.get_retry_after(HTTPResponse(status=503, headers={})) is None
    slept = []
    import urllib3.util.retry as retry_module

    original = retry_module.time.sleep
    retry_module.time.sleep = slept.append
    try:
        retry.sleep(limited)
    finally:
        retry_module.time.sleep = original
    assert slept == [12]


def test_the_legacy_shape_of_a_missing_version_header_is_an_error():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json={"status": "success", "data": {"bookings": []}})
        with pytest.raises(calcom_api.CalcomApiError, match="unexpected shape"):
            calcom_api.CalcomClient(API_KEY, base_url=API).get("/bookings", {})


def test_a_network_failure_is_an_error_sentence():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", body=requests.ConnectionError("refused"))
        with pytest.raises(calcom_api.CalcomApiError, match="could not be reached"):
            calcom_api.CalcomClient(API_KEY, base_url=API).get("/bookings", {})


# --- the sync ----------------------------------------------------------------------------


def test_a_first_sync_applies_every_missed_booking_and_records_the_drift(people, fake, keyed):
    result = run(keyed)

    assert result.status == "succeeded" and result.error == ""
    assert result.bookings_checked == 7 and result.pages_fetched == 2
    assert result.window_start == result.started_at - sync.DEFAULT_WINDOW
    assert state(people["Rosalind Franklin"])[:2] == ("first_round_scheduled", "FDTV97uCgVYbQq57kJUMBn")
    assert state(people["Alan Turing"])[:2] == ("first_round_scheduled", "kxsebLbgvomQpCkGBix8A6")
    assert state(people["Lise Meitner"])[:2] == ("waiting_first_round", "")
    assert state(people["Chien-Shiung Wu"])[3] == "EaDdoFTFD5aQgj8K5fvCgR"
    assert state(people["Srinivasa Ramanujan"])[:2] == ("first_round_scheduled", "TE49Sf71rrxRS2nLrRFRUS")
    sentences = [d.sentence for d in result.drift.all()]
    assert result.changes_made == len(sentences)
    assert any(s.startswith("Rosalind Franklin: booking was missed; interview FDTV97uCgVYbQq57kJUMBn")
               for s in sentences), sentences
    assert any(s.startswith("Alan Turing: reschedule was missed") for s in sentences), sentences
    change = StatusChange.objects.get(application=people["Rosalind Franklin"])
    assert change.note == f"Cal.com API sync #{result.pk}" and change.cause == change.note
    assert change.delivery is None


def test_a_second_sync_of_the_same_bookings_changes_nothing(people, fake, keyed):
    run(keyed)
    before = {name: state(a) for name, a in people.items()}
    changes = StatusChange.objects.count()

    again = full_recheck(keyed)  # the same bookings, listed again (the window would skip them)

    assert again.status == "succeeded" and again.bookings_checked == 7
    assert again.changes_made == 0 and not again.drift.exists()
    assert {name: state(a) for name, a in people.items()} == before
    assert StatusChange.objects.count() == changes
    # A scheduled sync's window starts at the previous successful run, minus the overlap.
    third = run(keyed)
    assert third.window_start == again.started_at - sync.OVERLAP
    assert fake.requests[-1]["afterUpdatedAt"].startswith(third.window_start.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_second_sync_writes_no_timeline_line_and_no_history_row(people, fake, keyed):
    """Regression (issue 15): every sync re-applied every booking it listed, so each hourly sync
    put every booking on its application's timeline again and wrote a history row for it."""
    run(keyed)
    timeline_lines, history_rows = TimelineEntry.objects.count(), Booking.history.count()

    again = full_recheck(keyed)

    assert again.bookings_checked == 7 and again.changes_made == 0

    assert TimelineEntry.objects.count() == timeline_lines
    assert Booking.history.count() == history_rows


def test_a_sync_still_applies_a_change_of_place_the_webhooks_missed(client, keyed, ada, fake):
    for name in ("booking_created", "booking_rescheduled"):
        post(client, keyed, sample(name))
    fake.bookings = ada_rescheduled_then("accepted")
    run(keyed)
    moved = ada_rescheduled_then("accepted")
    moved[1].update(location="https://meet.google.com/new-room-abc", meetingUrl="https://meet.google.com/new-room-abc",
                    updatedAt="2026-06-06T08:00:00.000Z")
    fake.bookings = moved

    result = full_recheck(keyed)

    assert result.drift.get().sentence.startswith("Ada Lovelace: a change of place was missed")

    ada.refresh_from_db()
    assert ada.interview_meeting_url == "https://meet.google.com/new-room-abc"


def test_bookings_the_webhooks_delivered_change_nothing(client, keyed, ada, fake):
    for name in ("booking_created", "booking_rescheduled"):
        assert post(client, keyed, sample(name)).json()["outcome"] == "applied"
    before, changes = state(ada), StatusChange.objects.count()
    fake.bookings = ada_rescheduled_then("accepted")

    result = run(keyed)

    assert result.changes_made == 0 and not result.drift.exists(), [d.sentence for d in result.drift.all()]
    assert state(ada) == before and StatusChange.objects.count() == changes


def test_a_missed_cancellation_is_applied_and_shown_as_drift(client, keyed, ada, fake):
    for name in ("booking_created", "booking_rescheduled"):
        post(client, keyed, sample(name))
    fake.bookings = ada_rescheduled_then("cancelled", reason="Found another programme")

    result = run(keyed)

    assert state(ada)[:2] == ("waiting_first_round", "")
    drift = result.drift.get()
    assert drift.application == ada and drift.booking_uid == ADA_NEW
    assert drift.sentence.startswith("Ada Lovelace: cancellation was missed; ")
    assert "Found another programme" in drift.sentence and "schedule cleared" in drift.sentence.lower()
    assert "first_round_scheduled → waiting_first_round" in drift.sentence


@pytest.mark.parametrize("order", ["webhooks first", "sync first"])
def test_webhooks_and_sync_end_the_same_in_either_order(client, keyed, ada, fake, order):
    fake.bookings = ada_rescheduled_then("accepted")
    bodies = [sample("booking_created"), sample("booking_rescheduled")]
    if order == "sync first":
        run(keyed)
        outcomes = [post(client, keyed, body).json()["outcome"] for body in bodies]
        assert outcomes == ["applied", "applied"]
    else:
        for body in bodies:
            post(client, keyed, body)
        run(keyed)
    assert state(ada) == ("first_round_scheduled", ADA_NEW, datetime(2026, 6, 11, 15, 0, tzinfo=UTC), "", False)
    assert [(c.old_status, c.new_status) for c in StatusChange.objects.filter(application=ada)] == [
        ("waiting_first_round", "first_round_scheduled")]


def test_an_unmatched_booking_from_the_api_becomes_an_orphaned_interview(keyed, fake):
    fake.bookings = [b for b in sample_bookings() if b["uid"] == "TE49Sf71rrxRS2nLrRFRUS"]
    result = run(keyed)
    orphan = OrphanedInterview.objects.get()
    assert orphan.booking_uid == "TE49Sf71rrxRS2nLrRFRUS"
    assert result.drift.get().sentence.startswith("Srinivasa Ramanujan: booking was missed; no application matches")


def test_a_refused_key_fails_the_run_with_the_sentence_and_releases_the_lock(people, keyed):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json=error_body("error_401"), status=401)
        result = run(keyed)
    assert result.status == "failed" and result.finished_at is not None
    assert result.error.startswith("The Cal.com API key was refused")
    assert sync.start_sync(keyed, trigger=SyncRun.Trigger.MANUAL).is_running


def test_one_sync_per_cohort_at_a_time(keyed):
    first = sync.start_sync(keyed, trigger=SyncRun.Trigger.MANUAL)
    with pytest.raises(sync.SyncAlreadyRunning) as caught:
        sync.start_sync(keyed, trigger=SyncRun.Trigger.SCHEDULED)
    assert caught.value.run == first
    SyncRun.objects.filter(pk=first.pk).update(started_at=first.started_at - sync.ABANDONED_AFTER - timedelta(1))
    second = sync.start_sync(keyed, trigger=SyncRun.Trigger.SCHEDULED)
    first.refresh_from_db()
    assert first.status == "failed" and "given up" in first.error and second.is_running


def test_a_cohort_without_a_key_cannot_sync(cohort):
    with pytest.raises(sync.SyncError, match="no Cal.com API key"):
        sync.start_sync(cohort, trigger=SyncRun.Trigger.MANUAL)


def test_the_scheduled_task_syncs_due_cohorts_only(people, keyed, fake, settings):
    from scheduling import tasks

    settings.CALCOM_SYNC_INTERVAL = 3600
    assert tasks.sync_due_cohorts.delay().get() == 1
    assert keyed.sync_runs.get().status == "succeeded"
    assert tasks.sync_due_cohorts.delay().get() == 0  # synced less than an hour ago


def test_the_command_syncs_one_cohort_and_prints_the_drift(people, keyed, fake):
    from io import StringIO

    out = StringIO()
    call_command("sync_calcom", keyed.slug, stdout=out)
    text = out.getvalue()
    assert "Rosalind Franklin: booking was missed" in text
    assert "7 bookings checked" in text
    with pytest.raises(CommandError, match="No cohort has the slug"):
        call_command("sync_calcom", "no-such-cohort")


def test_the_command_fails_loudly_on_a_refused_key(keyed):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json=error_body("error_401"), status=401)
        with pytest.raises(CommandError, match="The Cal.com API key was refused"):
            call_command("sync_calcom", keyed.slug)


# --- the API key at rest -------------------------------------------------------------------


def test_the_api_key_is_stored_encrypted_and_read_back_plain(cohort):
    cohort.calcom_api_key = API_KEY
    cohort.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT calcom_api_key FROM applications_cohort WHERE id = %s", [cohort.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and API_KEY not in stored
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == API_KEY
    assert cohort.calcom_api_key_hint == "…b3c4"


def test_a_new_encryption_key_still_reads_values_written_under_the_old(cohort, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old]
    cohort.set_calcom_api_key(API_KEY)
    settings.FIELD_ENCRYPTION_KEY = [new, old]
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == API_KEY
    settings.FIELD_ENCRYPTION_KEY = [new]
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == ""  # the old key is gone: the secret must be entered again


def test_check_deploy_warns_without_a_field_encryption_key(settings):
    from applications.encryption import check_field_encryption_key

    settings.FIELD_ENCRYPTION_KEY = []
    assert [w.id for w in check_field_encryption_key(None)] == ["applications.W001"]
    settings.FIELD_ENCRYPTION_KEY = ["not-a-key"]
    assert [w.id for w in check_field_encryption_key(None)] == ["applications.E001"]
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    assert check_field_encryption_key(None) == []


def test_only_the_event_types_of_the_cohort_s_rounds_are_synced(people, keyed, fake):
    from scheduling.models import InterviewRound

    InterviewRound.objects.create(cohort=keyed, number=2, booking_url="https://cal.com/dv/final",
                                  event_types=[90419, "90418"])
    result = run(keyed)
    assert fake.requests[0]["eventTypeIds"] == "90418,90419"
    assert result.bookings_checked == 2
    assert state(people["Rosalind Franklin"])[0] == "waiting_first_round"  # 90417: not this cohort's

    InterviewRound.objects.create(cohort=keyed, number=1, booking_url="https://cal.com/dv/first",
                                  event_types=["First-Round-Interview"])
    keyed.sync_runs.all().delete()  # a first sync again: the 30-day window
    result = run(keyed)
    assert "eventTypeIds" not in fake.requests[-1]  # a slug: Cal.com cannot filter by it, we do
    assert result.bookings_checked == 7
    assert state(people["Rosalind Franklin"])[0] == "first_round_scheduled"


def test_sync_now_against_the_loopback_fake_server_over_real_http(people, keyed, settings):
    """The documented local fake (bench/fake_calcom_api.py): real sockets, urllib3 Retry and all."""
    from bench.fake_calcom_api import serve_in_thread

    server, base_url = serve_in_thread(FakeCalcomApi())
    settings.CALCOM_API_URL = base_url
    try:
        result = run(keyed)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "succeeded" and result.bookings_checked == 7, result.error
    assert state(people["Rosalind Franklin"])[0] == "first_round_scheduled"


def test_a_rate_limited_page_over_real_http_waits_for_the_reset_and_goes_on(people, keyed, settings, monkeypatch):
    from bench.fake_calcom_api import serve_in_thread

    api = FakeCalcomApi()
    answer, limited = api.answer, []

    def first_limited(method, url, headers):
        if not limited:
            limited.append(url)
            return 429, {"X-RateLimit-Reset-Default": "1", "X-RateLimit-Remaining-Default": "0"}, error_body("error_429")
        return answer(method, url, headers)

    api.answer = first_limited
    slept = []
    import urllib3.util.retry as retry_module

    monkeypatch.setattr(retry_module.time, "sleep", slept.append)
    server, settings.CALCOM_API_URL = serve_in_thread(api)
    try:
        result = run(keyed)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "succeeded" and result.bookings_checked == 7
    assert slept == [1.0] and len(limited) == 1


def test_the_command_can_recheck_a_longer_window(people, keyed, fake):
    from io import StringIO

    call_command("sync_calcom", keyed.slug, stdout=StringIO())
    out = StringIO()
    call_command("sync_calcom", keyed.slug, "--days", "30", stdout=out)
    assert "7 bookings checked, 0 changes made" in out.getvalue()
    assert fake.requests[-1]["afterUpdatedAt"].startswith("2026-05-08T12:00")


def test_the_local_fake_moves_the_samples_so_a_first_sync_sees_them():
    from bench.fake_calcom_api import shift_to_now

    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    moved = shift_to_now(sample_bookings(), now)
    latest = max(calcom_api._time(b["updatedAt"]) for b in moved)
    assert latest == now - timedelta(hours=1)
    length = [calcom_api._time(b["end"]) - calcom_api._time(b["start"]) for b in sample_bookings()]
    assert [calcom_api._time(b["end"]) - calcom_api._time(b["start"]) for b in moved] == length


# --- a sync's cost per booking (issue 15) --------------------------------------------------


def many_applicants(cohort, n):
    """n applicants waiting for a first round, and their accepted bookings in API v2's shape."""
    bookings = []
    for i in range(n):
        email = f"applicant{i:03d}@example.org"
        ApplicationFactory(cohort=cohort, public_id=f"app_many{i:04d}", applicant_name=f"Applicant {i:03d}",
                           contact_email=email, status="waiting_first_round", current_stage="first_round")
        booking = sample_bookings()[0]
        uid = f"Many{i:03d}XyZp2RvT9wLbN4sHd"[:22]
        booking.update(id=900_000 + i, uid=uid, icsUid=f"{uid}@Cal.com", metadata={},
                       start=f"2026-06-{10 + i // 24:02d}T{i % 24:02d}:00:00.000Z",
                       end=f"2026-06-{10 + i // 24:02d}T{i % 24:02d}:30:00.000Z",
                       createdAt=f"2026-06-05T10:{i // 60:02d}:{i % 60:02d}.000Z",
                       updatedAt=f"2026-06-05T10:{i // 60:02d}:{i % 60:02d}.500Z")
        booking["attendees"][0].update(name=f"Applicant {i:03d}", email=email, displayEmail=email)
        booking["bookingFieldsResponses"].update(name=f"Applicant {i:03d}", email=email)
        bookings.append(booking)
    return bookings


def test_a_sync_of_missed_bookings_stays_within_eight_statements_a_booking(keyed, fake, django_assert_max_num_queries):
    """Matched by email, created, drift recorded: the stored rows are read a batch at a time and
    the drift written with the progress (it was a read and an INSERT of its own per booking, 691
    statements for these 75). Inside the test's transaction: no BEGIN, COMMIT or after-commit
    version bump per booking, which production adds (bench/sync_calcom.py counts those)."""
    n = 3 * sync.PROGRESS_EVERY
    fake.bookings = many_applicants(keyed, n)
    with django_assert_max_num_queries(8 * n + 20):
        result = run(keyed)
    assert result.changes_made == n and result.drift.count() == n
    assert Application.objects.filter(cohort=keyed, status="first_round_scheduled").count() == n


def test_a_recheck_that_finds_nothing_reads_the_stored_bookings_once_a_batch(
        keyed, fake, django_assert_max_num_queries):
    n = 3 * sync.PROGRESS_EVERY
    fake.bookings = many_applicants(keyed, n)
    run(keyed)
    # The run's own rows (read, window, pages, finish) and, per batch of PROGRESS_EVERY,
    # one read of the stored bookings and one progress write: not a query per booking.
    with django_assert_max_num_queries(12 + 2 * 3):
        again = full_recheck(keyed)
    assert again.bookings_checked == n and again.changes_made == 0 and not again.drift.exists()


def test_a_run_cut_short_keeps_the_drift_of_the_bookings_it_applied(keyed, fake, monkeypatch):
    fake.bookings = many_applicants(keyed, 40)
    apply = sync.apply_booking_event
    broken = fake.bookings[30]["uid"]

    def apply_until_the_broken_one(event, **kwargs):
        if event.uid == broken:
            raise RuntimeError("the database went away")
        return apply(event, **kwargs)

    monkeypatch.setattr(sync, "apply_booking_event", apply_until_the_broken_one)
    with pytest.raises(RuntimeError):
        run(keyed)

    result = SyncRun.objects.get()
    assert result.status == "failed" and "the database went away" in result.error
    # The 30 applied before it, 5 of them in the batch it cut short: each change is shown.
    assert result.changes_made == 30 and result.drift.count() == 30
    assert Application.objects.filter(cohort=keyed, status="first_round_scheduled").count() == 30


# --- seated bookings (API_V2.md §4: one booking, a seat per attendee) ------------------------


def seated_booking(seats):
    """A seated booking in API v2's shape: one uid, an attendee with a `seatUid` per (name, email)."""
    booking = ada_booking("SeatedSlot000000000001", "accepted", start="2026-06-12T10:00:00.000Z",
                          created="2026-06-03T09:00:00.000Z", updated="2026-06-03T09:00:00.000Z")
    del booking["bookingFieldsResponses"]  # the seated shape has none at the top (§4)
    booking["metadata"] = {}
    booking["attendees"] = [
        {"name": name, "email": email, "displayEmail": email, "timeZone": "Europe/London", "absent": False,
         "seatUid": f"seat-{i}", "bookingFieldsResponses": {"name": name}, "metadata": {}}
        for i, (name, email) in enumerate(seats)
    ]
    return booking


def test_a_seated_booking_from_the_api_is_one_booking_per_seat(keyed, fake, ada):
    grace = ApplicationFactory(cohort=keyed, applicant_name="Grace Chisholm", contact_email="grace@example.org",
                               status="waiting_first_round", current_stage="first_round")
    fake.bookings = [seated_booking([("Ada Lovelace", "ada.lovelace@example.org"),
                                     ("Grace Chisholm", "Grace@Example.org")])]

    result = run(keyed)

    assert result.changes_made == 2 and result.drift.count() == 2
    assert sorted(Booking.objects.values_list("uid", "attendee_key", "application_id")) == [
        ("SeatedSlot000000000001", "ada.lovelace@example.org", ada.pk),
        ("SeatedSlot000000000001", "grace@example.org", grace.pk)]
    assert state(ada)[:2] == state(grace)[:2] == ("first_round_scheduled", "SeatedSlot000000000001")
    assert full_recheck(keyed).changes_made == 0


def test_a_seat_the_webhook_delivered_is_not_booked_again_by_the_sync(client, keyed, fake, ada):
    body = sample("booking_created", uid="SeatedSlot000000000001", seatsPerTimeSlot=4,
                  startTime="2026-06-12T10:00:00Z", endTime="2026-06-12T10:30:00Z",
                  createdAt="2026-06-03T09:00:00.000Z")
    assert post(client, keyed, body).json()["outcome"] == "applied"
    fake.bookings = [seated_booking([("Ada Lovelace", "ada.lovelace@example.org")])]

    result = run(keyed)

    # One seat, the webhook's: before, the sync keyed the API's booking without its seat and
    # stored a second row for it, reported as a missed booking.
    assert Booking.objects.filter(uid="SeatedSlot000000000001").count() == 1
    assert result.changes_made == 0, [d.sentence for d in result.drift.all()]


def seated_webhook(uid, name, email):
    """A seated slot's BOOKING_CREATED webhook body for the seat of `email`."""
    from .calcom_helpers import with_email

    data = with_email(sample("booking_created", uid=uid, seatsPerTimeSlot=4, startTime="2026-06-12T10:00:00Z",
                             endTime="2026-06-12T10:30:00Z", createdAt="2026-06-03T09:00:00.000Z"), email, name)
    data["payload"]["metadata"] = {}
    return data


def test_a_seat_no_longer_listed_was_cancelled_and_the_sync_frees_it(client, keyed, fake, ada):
    grace = ApplicationFactory(cohort=keyed, applicant_name="Grace Chisholm", contact_email="grace@example.org",
                               status="waiting_first_round", current_stage="first_round")
    for name, email in (("Ada Lovelace", "ada.lovelace@example.org"), ("Grace Chisholm", "grace@example.org")):
        assert post(client, keyed, seated_webhook("SeatedSlot000000000001", name, email)).json()["outcome"] == "applied"
    # Ada cancelled her seat; the webhook was missed. The API lists the slot with Grace alone.
    fake.bookings = [seated_booking([("Grace Chisholm", "grace@example.org")])]

    result = run(keyed)

    assert state(ada)[:2] == ("waiting_first_round", "")
    assert state(grace)[:2] == ("first_round_scheduled", "SeatedSlot000000000001")
    drift = result.drift.get()
    assert drift.application == ada and drift.sentence.startswith("Ada Lovelace: cancellation was missed; ")
    assert Booking.objects.get(attendee_key="ada.lovelace@example.org").state == Booking.State.CANCELLED
    assert full_recheck(keyed).changes_made == 0


def test_a_seated_booking_listed_without_attendees_cancels_no_seat(client, keyed, fake, ada):
    assert post(client, keyed, seated_webhook("SeatedSlot000000000001", "Ada Lovelace",
                                              "ada.lovelace@example.org")).json()["outcome"] == "applied"
    hidden = seated_booking([("Ada Lovelace", "ada.lovelace@example.org")])
    hidden["attendees"] = []  # API_V2.md §4: a key that is not the slot's host or admin sees none

    fake.bookings = [hidden]

    result = full_recheck(keyed)

    assert result.bookings_checked == 1 and result.changes_made == 0
    assert state(ada)[:2] == ("first_round_scheduled", "SeatedSlot000000000001")
