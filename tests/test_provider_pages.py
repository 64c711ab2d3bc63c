"""What admins see of issue 11: provider, interviewer, place and who changed what on the
application page; the Calendly and Cronofy keys on the cohort settings page; send_webhook for
every provider."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from applications.models import Membership
from scheduling.models import WebhookDelivery

from .calcom_helpers import SAMPLES, post, sample
from .calendly_helpers import CRONOFY_SECRET, SIGNING_KEY, DERIVED, calendly_sample, post_calendly
from .factories import MembershipFactory, UserFactory


def detail_url(application):
    return reverse("applications:detail", args=[application.cohort.slug, application.pk])


def secrets_url(cohort):
    return reverse("scheduling:provider_secrets", args=[cohort.slug])


# --- the application page ------------------------------------------------------------------


def test_the_application_page_shows_provider_interviewer_place_and_who_moved_it(admin_client, cohort, ada):
    data = sample("booking_created", location="Office 3B, 12 Byron Street")
    data["payload"]["attendees"][0]["phoneNumber"] = "+44 20 7946 0958"
    post(admin_client, cohort, data)
    moved = sample("booking_rescheduled", location="Office 3B, 12 Byron Street")
    moved["payload"]["attendees"][0]["phoneNumber"] = "+44 20 7946 0958"
    post(admin_client, cohort, moved)
    text = admin_client.get(detail_url(ada)).content.decode()
    assert "Booked through</dt><dd>Cal.com" in text
    assert "Grace Hopper" in text and "grace.hopper@example.org" in text and "America/New_York" in text
    assert "Office 3B, 12 Byron Street" in text
    assert "+44 20 7946 0958" in text
    assert "Which fellowship track are you applying to?" in text and "Computing &amp; Mathematics" in text
    assert "Moved here from <code>k7Qm3XyZp2RvT9wLbN4sHd</code> by ada.lovelace@example.org" in text
    assert "A lecture at the Royal Society moved to the 9th." in text


def test_the_application_page_says_who_cancelled_and_why_and_where_it_came_from(admin_client, cohort, ada):
    cohort.calendly_signing_key = SIGNING_KEY
    cohort.save()
    post_calendly(admin_client, cohort, calendly_sample("invitee_created"))
    post_calendly(admin_client, cohort, calendly_sample("invitee_canceled"))
    text = admin_client.get(detail_url(ada)).content.decode()
    assert "Booked through</dt><dd>Calendly" in text
    assert "Moved to <code>DFDDB3S2NP6W8R4T</code> by Ada Lovelace (invitee)" in text
    assert '<td data-label="From">Calendly</td>' in text


def test_a_no_show_is_on_the_application_page(admin_client, cohort, ada):
    post(admin_client, cohort, sample("booking_created"))
    post(admin_client, cohort, {"triggerEvent": "BOOKING_NO_SHOW_UPDATED", "createdAt": "2026-06-09T15:00:00.000Z",
                                "payload": {"bookingUid": "k7Qm3XyZp2RvT9wLbN4sHd", "attendees": [
                                    {"email": "ada.lovelace@example.org", "noShow": True}]}})
    assert "The applicant did not show up" in admin_client.get(detail_url(ada)).content.decode()


def test_the_tab_names_the_interviewer_and_place_on_hover(admin_client, cohort, ada):
    post(admin_client, cohort, sample("booking_created", location="Office 3B"))
    text = admin_client.get(reverse("applications:list", args=[cohort.slug])).content.decode()
    assert 'title="Interviewer: Grace Hopper &lt;grace.hopper@example.org&gt; · Place: Office 3B"' in text


# --- the settings page's provider keys ------------------------------------------------------


def test_an_admin_sets_and_removes_the_provider_keys(admin_client, cohort):
    page = admin_client.get(reverse("scheduling:settings", args=[cohort.slug])).content.decode()
    assert cohort.webhook_path("calendly") in page and cohort.webhook_path("cronofy") in page
    assert "invitee_no_show.created" in page
    response = admin_client.post(secrets_url(cohort), {"calendly_signing_key": SIGNING_KEY,
                                                       "cronofy_client_secret": CRONOFY_SECRET})
    assert response.status_code == 302 and response["Location"].endswith("#other-providers")
    cohort.refresh_from_db()
    assert (cohort.calendly_signing_key, cohort.cronofy_client_secret) == (SIGNING_KEY, CRONOFY_SECRET)
    page = admin_client.get(reverse("scheduling:settings", args=[cohort.slug])).content.decode()
    assert SIGNING_KEY not in page and "…-key" in page  # only its last four characters
    admin_client.post(secrets_url(cohort), {"remove_cronofy": "on"})  # blank Calendly field: kept
    cohort.refresh_from_db()
    assert (cohort.calendly_signing_key, cohort.cronofy_client_secret) == (SIGNING_KEY, "")


def test_a_key_with_spaces_is_refused_with_a_sentence(admin_client, cohort):
    response = admin_client.post(secrets_url(cohort), {"calendly_signing_key": "two words"})
    assert response.status_code == 422
    assert "Keys have no spaces" in response.content.decode()
    cohort.refresh_from_db()
    assert cohort.calendly_signing_key == ""


def test_outsiders_get_404_and_members_403_on_the_provider_keys(client, cohort, outsider):
    client.force_login(outsider)
    assert client.post(secrets_url(cohort), {"calendly_signing_key": "x"}).status_code == 404
    member = UserFactory(username="reader")
    MembershipFactory(user=member, organization=cohort.organization, role=Membership.Role.MEMBER)
    client.force_login(member)
    assert client.post(secrets_url(cohort), {"calendly_signing_key": "x"}).status_code == 403
    cohort.refresh_from_db()
    assert cohort.calendly_signing_key == ""


# --- send_webhook ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_send_webhook_moves_an_application_with_calendlys_samples_as_with_cal_coms(live_server, cohort, ada):
    cohort.calendly_signing_key = SIGNING_KEY
    cohort.save()
    files = [SAMPLES / "calendly_invitee_created.json", SAMPLES / "calendly_invitee_canceled.json",
             DERIVED / "calendly_invitee_created_rescheduled.json", DERIVED / "calendly_invitee_canceled_final.json"]
    seen = []
    for path in files:
        out = io.StringIO()
        call_command("send_webhook", str(path), cohort=cohort.slug, provider="calendly", url=live_server.url,
                     stdout=out)
        assert out.getvalue().startswith("200 applied"), out.getvalue()
        ada.refresh_from_db()
        seen.append((ada.status, ada.interview_booking_uid))
    assert seen == [("first_round_scheduled", "HDHCA5T4QZ7K2M9P"), ("first_round_scheduled", "HDHCA5T4QZ7K2M9P"),
                    ("first_round_scheduled", "DFDDB3S2NP6W8R4T"), ("waiting_first_round", "")]
    assert set(WebhookDelivery.objects.values_list("provider", flat=True)) == {"calendly"}


@pytest.mark.django_db(transaction=True)
def test_send_webhook_signs_cronofy_with_the_client_secret(live_server, cohort, ada, tmp_path):
    import json

    from .calendly_helpers import time_chosen

    cohort.cronofy_client_secret = CRONOFY_SECRET
    cohort.save()
    body = tmp_path / "time_chosen.json"
    body.write_text(json.dumps(time_chosen()))
    out = io.StringIO()
    call_command("send_webhook", str(body), cohort=cohort.slug, provider="cronofy", url=live_server.url, stdout=out)
    assert out.getvalue().startswith("200 applied")
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled" and ada.interview_kind == "cronofy"


def test_send_webhook_says_when_the_cohort_has_no_key_for_the_provider(cohort):
    with pytest.raises(CommandError, match="has no Calendly signing key"):
        call_command("send_webhook", str(SAMPLES / "calendly_invitee_created.json"), cohort=cohort.slug,
                     provider="calendly")


@pytest.mark.django_db(transaction=True)
def test_send_webhook_sets_calendlys_ref_and_email(live_server, cohort, ada):
    cohort.calendly_signing_key = SIGNING_KEY
    cohort.save()
    ada.public_id = "app_0123456789ab"
    ada.save()
    out = io.StringIO()
    call_command("send_webhook", str(SAMPLES / "calendly_invitee_created.json"), cohort=cohort.slug,
                 provider="calendly", url=live_server.url, application_id="app_0123456789ab",
                 email="ada.personal@example.net", stdout=out)
    assert out.getvalue().startswith("200 applied"), out.getvalue()
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"
    assert WebhookDelivery.objects.get().match_rule == "public_id"
