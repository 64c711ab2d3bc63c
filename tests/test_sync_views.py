"""The Cal.com sync page, the API key form and "Sync now" (faked Cal.com API, never the real one)."""

from datetime import datetime, timezone

import pytest
import responses
import time_machine
from django.urls import reverse

from applications.models import Membership
from scheduling.models import SyncRun, WebhookDelivery

from .calcom_api_fake import API_KEY, FakeCalcomApi, error_body
from .factories import ApplicationFactory, MembershipFactory, UserFactory

HX = {"HTTP_HX_REQUEST": "true"}
API = "https://api.cal.com/v2"


@pytest.fixture(autouse=True)
def _in_june_2026():
    with time_machine.travel(datetime(2026, 6, 7, 12, 0, tzinfo=timezone.utc)):
        yield


@pytest.fixture
def member_client(client, cohort):
    user = UserFactory(username="reader")
    MembershipFactory(user=user, organization=cohort.organization, role=Membership.Role.MEMBER)
    client.force_login(user)
    return client


@pytest.fixture
def rosalind(cohort):
    return ApplicationFactory(cohort=cohort, public_id="app_3c8e51f0", applicant_name="Rosalind Franklin",
                              contact_email="rosalind.franklin@example.com", status="waiting_first_round",
                              current_stage="first_round")


def page(cohort):
    return reverse("scheduling:sync_health", args=[cohort.slug])


def test_an_admin_saves_a_key_and_sees_only_its_last_four(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:calcom_api_key", args=[cohort.slug]), {"api_key": API_KEY})
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduling:settings", args=[cohort.slug]) + "#calcom-api"
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == API_KEY

    html = admin_client.get(page(cohort)).content.decode()
    assert "…b3c4" in html and API_KEY not in html and "Replace key" in html


def test_a_key_that_is_not_a_cal_com_key_is_refused_with_a_sentence(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:calcom_api_key", args=[cohort.slug]), {"api_key": "hunter2"})
    assert response.status_code == 422
    assert "starts with “cal_”" in response.content.decode()
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == ""


def test_an_admin_rotates_then_removes_the_key(admin_client, cohort):
    cohort.set_calcom_api_key("cal_old_key_1111")
    url = reverse("scheduling:calcom_api_key", args=[cohort.slug])
    admin_client.post(url, {"api_key": "cal_live_new_key_2222"})
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == "cal_live_new_key_2222"
    admin_client.post(url, {"remove": "1"})
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == ""


def test_a_member_reads_the_page_but_cannot_change_the_key_or_sync(member_client, cohort):
    cohort.set_calcom_api_key(API_KEY)
    html = member_client.get(page(cohort)).content.decode()
    assert "…b3c4" in html and "Replace key" not in html and "Sync now" not in html
    response = member_client.post(reverse("scheduling:calcom_api_key", args=[cohort.slug]), {"remove": "1"})
    assert response.status_code == 403 and "Only the organization" in response.content.decode()
    assert member_client.post(reverse("scheduling:sync_now", args=[cohort.slug])).status_code == 403
    cohort.refresh_from_db()
    assert cohort.calcom_api_key == API_KEY and not SyncRun.objects.exists()


@pytest.mark.parametrize("name", ["sync_health", "calcom_api_key", "sync_now", "sync_progress"])
def test_an_outsider_gets_404(client, outsider, cohort, name):
    client.force_login(outsider)
    # A run that exists: the 404 must come from the cohort being out of reach, not from the pk.
    run = SyncRun.objects.create(cohort=cohort, trigger=SyncRun.Trigger.MANUAL)
    args = [cohort.slug, run.pk] if name == "sync_progress" else [cohort.slug]
    method = client.get if name in ("sync_health", "sync_progress") else client.post
    assert method(reverse(f"scheduling:{name}", args=args)).status_code == 404


def test_sync_now_from_the_tab_finds_a_booking_whose_webhook_never_came(admin_client, cohort, rosalind,
                                                                         django_capture_on_commit_callbacks):
    cohort.set_calcom_api_key(API_KEY)
    tab = admin_client.get(reverse("applications:list", args=[cohort.slug])).content.decode()
    assert "Sync now" in tab

    fake = FakeCalcomApi()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps, API)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("scheduling:sync_now", args=[cohort.slug]), **HX)

    assert response.status_code == 200
    run = SyncRun.objects.get()
    # The fragment answered before the task ran (after commit); the fragment's poll sees it done.
    assert f'hx-get="{reverse("scheduling:sync_progress", args=[cohort.slug, run.pk])}"' in response.content.decode()
    response = admin_client.get(reverse("scheduling:sync_progress", args=[cohort.slug, run.pk]), **HX)
    html = response.content.decode()
    assert "Sync finished: 7 bookings checked" in html and "every 1s" not in html
    assert "Rosalind Franklin: booking was missed" in html
    assert "statusChanged" in response.headers["HX-Trigger"]
    rosalind.refresh_from_db()
    assert rosalind.status == "first_round_scheduled"
    run.refresh_from_db()
    assert run.trigger == "manual" and run.requested_by.username == "org_admin"
    assert not WebhookDelivery.objects.exists()

    page_html = admin_client.get(page(cohort)).content.decode()
    assert "Rosalind Franklin: booking was missed" in page_html
    assert f'href="{reverse("applications:detail", args=[cohort.slug, rosalind.pk])}"' in page_html


def test_the_progress_fragment_polls_while_running_and_stops_when_done(admin_client, cohort):
    cohort.set_calcom_api_key(API_KEY)
    run = SyncRun.objects.create(cohort=cohort, pages_fetched=3, bookings_checked=250)
    url = reverse("scheduling:sync_progress", args=[cohort.slug, run.pk])

    html = admin_client.get(url, **HX).content.decode()
    assert 'hx-trigger="every 1s"' in html and "3 pages fetched, 250 bookings checked" in html
    assert "<progress" in html

    SyncRun.objects.filter(pk=run.pk).update(status="failed", error="The Cal.com API key was refused (HTTP 401).")
    html = admin_client.get(url, **HX).content.decode()
    assert "every 1s" not in html and "Sync failed: The Cal.com API key was refused" in html
    assert admin_client.get(url).status_code == 302  # without htmx: the page


def test_sync_now_without_htmx_redirects_with_a_message(admin_client, cohort, django_capture_on_commit_callbacks):
    cohort.set_calcom_api_key(API_KEY)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/bookings", json=error_body("error_401"), status=401)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("scheduling:sync_now", args=[cohort.slug]), follow=True)
    assert "Sync started" in response.content.decode()
    html = admin_client.get(page(cohort)).content.decode()
    assert "The Cal.com API key was refused" in html  # the run's error, on the page


def test_a_second_sync_now_shows_the_running_one(admin_client, cohort):
    cohort.set_calcom_api_key(API_KEY)
    running = SyncRun.objects.create(cohort=cohort)
    response = admin_client.post(reverse("scheduling:sync_now", args=[cohort.slug]), **HX)
    assert response.status_code == 200
    assert "already running" in response.content.decode()
    assert SyncRun.objects.get() == running


def test_sync_now_without_a_key_says_what_to_do(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:sync_now", args=[cohort.slug]), **HX)
    assert response.status_code == 422
    assert "no Cal.com API key" in response.content.decode()


def test_the_page_counts_stuck_failed_and_spooled_deliveries(admin_client, cohort):
    from datetime import timedelta

    from django.utils import timezone as dj_timezone

    from scheduling import spool

    old = dj_timezone.now() - timedelta(minutes=5)
    for i, outcome in enumerate(["received", "received", "failed", "applied"]):
        WebhookDelivery.objects.create(cohort=cohort, body=b"{}", sha256=f"{i:064d}", outcome=outcome,
                                       received_at=old)
    WebhookDelivery.objects.create(cohort=cohort, body=b"{}", sha256="f" * 64, outcome="failed", attempts=8)
    spool.spool_delivery("calcom", cohort.webhook_key, b"{}", "s")

    html = admin_client.get(page(cohort)).content.decode()
    assert "<strong>2</strong> webhook deliveries stuck" in html
    assert "<strong>1</strong> failed, being retried" in html
    assert "<strong>1</strong> failed every retry" in html
    assert "<strong>1</strong> kept on disk" in html


def test_the_cohort_settings_page_has_the_key_the_health_counts_and_recent_drift(admin_client, cohort, rosalind):
    from scheduling.models import SyncDrift

    cohort.set_calcom_api_key(API_KEY)
    run = SyncRun.objects.create(cohort=cohort, status="succeeded", bookings_checked=7, changes_made=1)
    SyncDrift.objects.create(run=run, application=rosalind, booking_uid="FDTV97uCgVYbQq57kJUMBn",
                             sentence="Rosalind Franklin: booking was missed; interview FDTV97uCgVYbQq57kJUMBn.")

    html = admin_client.get(reverse("scheduling:settings", args=[cohort.slug])).content.decode()

    assert 'id="calcom-api"' in html and "…b3c4" in html and API_KEY not in html
    assert "Replace key" in html and "Sync now" in html
    assert "Rosalind Franklin: booking was missed" in html
    assert "webhook deliveries stuck" in html


def test_the_admin_lists_sync_runs_with_their_drift(client, cohort, rosalind):
    from scheduling.models import SyncDrift

    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    run = SyncRun.objects.create(cohort=cohort, status="succeeded", changes_made=1)
    SyncDrift.objects.create(run=run, application=rosalind, booking_uid="FDTV97uCgVYbQq57kJUMBn",
                             sentence="Rosalind Franklin: booking was missed.")
    assert client.get(reverse("admin:scheduling_syncrun_changelist")).status_code == 200
    html = client.get(reverse("admin:scheduling_syncrun_change", args=[run.pk])).content.decode()
    assert "Rosalind Franklin: booking was missed." in html
