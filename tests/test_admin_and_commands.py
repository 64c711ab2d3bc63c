"""The Django admin for every model, and the management commands."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from applications.models import Application, Cohort, StatusChange
from scheduling.models import WebhookDelivery

from .calcom_helpers import SAMPLES, post, sample
from .factories import ApplicationFactory


@pytest.fixture
def superuser_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(user)
    return client


MODELS = ["applications/organization", "applications/membership", "applications/cohort",
          "applications/application", "applications/applicationemail", "applications/statuschange",
          "scheduling/webhookdelivery", "scheduling/booking", "orphans/orphanedinterview"]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_an_admin_changelist_with_search(superuser_client, client, cohort, ada, model):
    post(client, cohort, sample("booking_created"))
    response = superuser_client.get(f"/admin/{model}/", {"q": "ada"})
    assert response.status_code == 200


def test_delivery_admin_shows_pretty_json_outcome_and_error(superuser_client, client, cohort):
    post(client, cohort, b"not json")
    delivery = WebhookDelivery.objects.get()
    response = superuser_client.get(reverse("admin:scheduling_webhookdelivery_change", args=[delivery.pk]))
    assert b"not valid JSON" in response.content
    post(client, cohort, sample("ping"))
    ping = WebhookDelivery.objects.get(trigger_event="PING")
    response = superuser_client.get(reverse("admin:scheduling_webhookdelivery_change", args=[ping.pk]))
    assert b'&quot;triggerEvent&quot;: &quot;PING&quot;' in response.content
    assert b"Ping test" in response.content


def test_reprocess_action_applies_a_failed_delivery(superuser_client, client, cohort, ada, monkeypatch):
    from scheduling import services

    monkeypatch.setattr(services, "sync_application", lambda *a, **k: 1 / 0)
    post(client, cohort, sample("booking_created"))
    monkeypatch.undo()
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "failed"
    response = superuser_client.post(
        reverse("admin:scheduling_webhookdelivery_changelist"),
        {"action": "reprocess", "_selected_action": [delivery.pk]}, follow=True,
    )
    assert b"Reprocessed: 1 applied." in response.content
    delivery.refresh_from_db()
    assert delivery.outcome == "applied"
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"


def test_status_action_moves_through_the_table_and_refuses_the_rest(superuser_client, cohort):
    waiting = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    accepted = ApplicationFactory(cohort=cohort, status="accepted")
    response = superuser_client.post(
        reverse("admin:applications_application_changelist"),
        {"action": "move_to_declined", "_selected_action": [waiting.pk, accepted.pk]}, follow=True,
    )
    assert b"Moved 1 to Declined." in response.content
    assert "cannot move to “Declined”".encode() in response.content
    waiting.refresh_from_db(), accepted.refresh_from_db()
    assert (waiting.status, waiting.current_stage, accepted.status) == ("declined", "decision", "accepted")
    change = StatusChange.objects.get(application=waiting)
    assert change.user.username == "root"


def test_status_is_read_only_in_the_admin_form(superuser_client, cohort):
    application = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    url = reverse("admin:applications_application_change", args=[application.pk])
    assert b'name="status"' not in superuser_client.get(url).content


def test_cohort_creation_generates_key_and_secret_and_they_rotate(cohort):
    fresh = Cohort.objects.create(organization=cohort.organization, name="Spring Intake")
    assert fresh.slug == "spring-intake"
    assert len(fresh.webhook_key) >= 32 and len(fresh.webhook_secret) >= 32
    key, secret = fresh.webhook_key, fresh.webhook_secret
    fresh.rotate_webhook_key()
    fresh.rotate_webhook_secret()
    fresh.refresh_from_db()
    assert fresh.webhook_key != key and fresh.webhook_secret != secret
    assert Cohort.objects.create(organization=cohort.organization, name="Spring Intake").slug == "spring-intake-2"


def test_application_defaults(cohort):
    application = Application.objects.create(cohort=cohort, applicant_name="A", contact_email=" A@B.org ")
    assert (application.status, application.current_stage) == ("new", "intake")
    assert application.contact_email == "a@b.org"
    assert application.public_id.startswith("app_")


def test_seed_demo_creates_every_status_and_a_login(db, settings):
    settings.DEBUG = True  # `make run` exports DEBUG=1
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)  # idempotent
    cohort = Cohort.objects.get(slug="northwind-2026")
    statuses = set(cohort.applications.values_list("status", flat=True))
    assert statuses == {s for s, _ in Application._meta.get_field("status").choices}
    assert cohort.applications.count() >= 30
    assert cohort.applications.exclude(pending_booking_uid="").exists()
    assert cohort.applications.filter(reschedule_requested=True).exists()
    assert get_user_model().objects.get(username="admin").check_password("cohortos-demo")
    assert cohort.webhook_path() in out.getvalue()
    assert cohort.webhook_secret in out.getvalue()
    assert "as admin / cohortos-demo" in out.getvalue()
    assert cohort.webhook_secret != "cohortos-test-secret" and len(cohort.webhook_secret) >= 40


def test_seed_demo_refuses_to_run_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--i-know-this-is-not-production"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not get_user_model().objects.exists() and not Cohort.objects.exists()


def test_seed_demo_with_debug_off_and_the_flag_gives_random_credentials(db, settings):
    settings.DEBUG = False
    out = io.StringIO()
    call_command("seed_demo", "--i-know-this-is-not-production", stdout=out)
    admin = get_user_model().objects.get(username="admin")
    assert not admin.check_password("cohortos-demo")
    password = re.search(r"as admin / (\S+)", out.getvalue()).group(1)
    assert admin.check_password(password) and len(password) >= 20
    other = io.StringIO()
    call_command("seed_demo", "--i-know-this-is-not-production", "--reset", stdout=other)
    assert password not in other.getvalue()  # printed once, when created
    secrets = set(Cohort.objects.values_list("webhook_secret", flat=True))
    assert secrets and "cohortos-test-secret" not in secrets


@pytest.mark.django_db(transaction=True)
def test_send_webhook_signs_and_posts_a_sample_to_a_running_server(live_server, cohort, ada):
    out = io.StringIO()
    call_command("send_webhook", str(SAMPLES / "calcom_booking_created.json"), cohort=cohort.slug,
                 url=live_server.url, stdout=out)
    assert out.getvalue().startswith("200 applied")
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"
    delivery = WebhookDelivery.objects.get()
    assert delivery.body_bytes == (SAMPLES / "calcom_booking_created.json").read_bytes()


def test_send_webhook_explains_an_unknown_cohort(db):
    with pytest.raises(CommandError, match="No cohort with slug 'nope'"):
        call_command("send_webhook", str(SAMPLES / "calcom_ping.json"), cohort="nope")


def test_reprocess_webhooks_leaves_settled_deliveries_alone(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    out = io.StringIO()
    call_command("reprocess_webhooks", stdout=out)
    assert "Reprocessed 0: nothing to do." in out.getvalue()
    call_command("reprocess_webhooks", id=[WebhookDelivery.objects.get().pk], stdout=out)
    assert StatusChange.objects.count() == 1
