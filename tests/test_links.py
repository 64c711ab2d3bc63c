"""Bound booking links: the signed ref, prefill, matching by ref, and the round from the event type."""

from urllib.parse import parse_qs, urlsplit

import pytest

from scheduling import links
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, CohortFactory, InterviewRoundFactory


def refreshed(application):
    application.refresh_from_db()
    return application


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- the ref -----------------------------------------------------------------------------


def test_ref_round_trips_and_is_stable(cohort, ada):
    ref = links.make_ref(ada, 1)
    assert ref == links.make_ref(ada, 1)
    assert ref.startswith("app_7f3c2a91.1.")
    assert len(ref) <= 64  # Cal.com metadata values, Calendly utm_content, Cronofy's 128
    assert links.check_ref(cohort, ref) == links.RefCheck("signed", "app_7f3c2a91", 1)
    assert links.make_ref(ada, 2) != ref


@pytest.mark.parametrize("tamper", [
    lambda ref: ref.replace(".1.", ".2."),  # moved to the other round
    lambda ref: "app_000000000000" + ref[len("app_7f3c2a91"):],  # moved to another application
    lambda ref: ref[:-1] + ("A" if ref[-1] != "A" else "B"),  # the MAC changed
])
def test_a_tampered_ref_is_invalid(cohort, ada, tamper):
    check = links.check_ref(cohort, tamper(links.make_ref(ada, 1)))
    assert check.kind == "invalid"
    assert "not valid for this cohort" in check.problem


def test_another_cohorts_ref_is_invalid_here(cohort):
    stranger = ApplicationFactory(cohort=CohortFactory(), public_id="app_7f3c2a91")
    assert links.check_ref(cohort, links.make_ref(stranger, 1)).kind == "invalid"


def test_numeric_pk_is_refused_and_bare_public_id_accepted(cohort, ada):
    assert links.check_ref(cohort, str(ada.pk)).kind == "number"
    assert links.check_ref(cohort, "app_7f3c2a91") == links.RefCheck("bare", "app_7f3c2a91")
    assert links.check_ref(cohort, "").kind == ""


def test_ref_signed_with_an_old_secret_key_still_verifies(cohort, ada, settings):
    ref = links.make_ref(ada, 1)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-after-rotation-0123456789abcdef"
    assert links.check_ref(cohort, ref).kind == "signed"
    assert links.make_ref(ada, 1) != ref


# --- the link ----------------------------------------------------------------------------


def test_calcom_link_prefills_name_and_email_and_carries_the_ref(cohort):
    application = ApplicationFactory(cohort=cohort, applicant_name="Zoë O'Brien & Co",
                                     contact_email="zoe+test@example.org", status="waiting_first_round")
    interview_round = InterviewRoundFactory(cohort=cohort, booking_url="https://cal.com/northwind/intro?layout=week_view")
    url = links.booking_link(application, interview_round)
    assert url.startswith("https://cal.com/northwind/intro?")
    params = query(url)
    assert params["name"] == "Zoë O'Brien & Co"
    assert params["email"] == "zoe+test@example.org"
    assert params["layout"] == "week_view"
    assert params["metadata[application_id]"] == links.make_ref(application, 1)
    assert params["application-id"] == params["metadata[application_id]"]
    assert "+" not in urlsplit(url).query.split("email=")[1].split("&")[0].replace("%2B", "")


def test_calendly_link_uses_utm_content(cohort, ada):
    interview_round = InterviewRoundFactory(cohort=cohort, number=2, booking_url="https://calendly.com/northwind/second")
    params = query(links.booking_link(ada, interview_round))
    assert params == {"name": "Ada Lovelace", "email": "ada.lovelace@example.org",
                      "utm_content": links.make_ref(ada, 2)}


def test_google_appointment_page_is_left_as_it_is(cohort, ada):
    url = "https://calendar.app.google/AbCdEf123"
    interview_round = InterviewRoundFactory(cohort=cohort, booking_url=url)
    assert links.booking_link(ada, interview_round) == url


def test_link_for_picks_the_round_the_status_waits_for(cohort, ada):
    assert links.link_for(ada) == (None, "")
    InterviewRoundFactory(cohort=cohort, number=1)
    second = InterviewRoundFactory(cohort=cohort, number=2)
    ada.status = "waiting_second_round"
    interview_round, url = links.link_for(ada)
    assert interview_round == second and links.make_ref(ada, 2) in url


def test_applicant_page_is_the_applicants_own_page(ada, settings):
    settings.SITE_URL = "https://apply.example"
    from scheduling.applicant import token_for

    assert links.applicant_page_url(ada) == f"https://apply.example/i/{token_for(ada).key}/"


# --- matching by ref ---------------------------------------------------------------------


def test_booking_with_a_valid_ref_and_a_different_email_schedules_that_application(client, cohort, ada):
    ref = links.make_ref(ada, 1)
    data = with_email(sample("booking_created", metadata={"application_id": ref}), "ada.personal@example.net")
    response = post(client, cohort, data)
    assert response.json()["outcome"] == "applied"
    assert refreshed(ada).status == "first_round_scheduled"
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert (delivery.match_rule, delivery.attention, delivery.application) == ("link", "", ada)


def test_forged_ref_falls_through_to_email_and_is_noted(client, cohort, ada):
    victim = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    forged = links.make_ref(victim, 1)[:-2] + "xx"
    response = post(client, cohort, sample("booking_created", metadata={"application_id": forged}))
    assert refreshed(victim).status == "waiting_first_round"
    assert refreshed(ada).status == "first_round_scheduled"  # by Ada's own email
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.match_rule == "email"
    assert "not valid for this cohort" in delivery.attention


def test_forged_ref_with_an_unknown_email_is_an_orphan(client, cohort):
    victim = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    forged = links.make_ref(victim, 1)[:-2] + "xx"
    data = with_email(sample("booking_created", metadata={"application_id": forged}), "mallory@example.net")
    response = post(client, cohort, data)
    assert response.json()["outcome"] == "orphaned"
    assert refreshed(victim).status == "waiting_first_round"
    assert "not valid" in WebhookDelivery.objects.get(pk=response.json()["delivery"]).attention


def test_old_bare_public_id_still_matches(client, cohort, ada):
    data = with_email(sample("booking_created", metadata={"application_id": "app_7f3c2a91"}), "other@example.net")
    response = post(client, cohort, data)
    assert refreshed(ada).status == "first_round_scheduled"
    assert WebhookDelivery.objects.get(pk=response.json()["delivery"]).match_rule == "public_id"


def test_later_triggers_without_metadata_follow_the_chain(client, cohort, ada):
    ref = links.make_ref(ada, 1)
    post(client, cohort, with_email(sample("booking_created", metadata={"application_id": ref}), "x@example.net"))
    response = post(client, cohort, with_email(sample("booking_rescheduled"), "x@example.net"))
    assert WebhookDelivery.objects.get(pk=response.json()["delivery"]).match_rule == "chain"
    assert refreshed(ada).interview_booking_uid == "Pw8tLc5HnJ2vQe6RkMz3Ya"


# --- the round comes from the event type --------------------------------------------------


@pytest.fixture
def rounds(cohort):
    return (InterviewRoundFactory(cohort=cohort, number=1, event_types=["first-interview", 111]),
            InterviewRoundFactory(cohort=cohort, number=2, event_types=["final-interview"]))


def test_first_round_booking_while_waiting_for_round_two_leaves_the_status(client, cohort, rounds):
    mary = ApplicationFactory(cohort=cohort, status="waiting_second_round", contact_email="ada.lovelace@example.org")
    response = post(client, cohort, sample("booking_created", type="first-interview"))
    assert response.json()["outcome"] == "applied"
    mary = refreshed(mary)
    assert mary.status == "waiting_second_round"
    booking = Booking.objects.get(uid=mary.interview_booking_uid)
    assert booking.round == 1
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.attention == "Booked the first-round interview while waiting for round 2."
    assert "status left as it was" in delivery.detail


def test_second_round_booking_while_waiting_for_round_one_leaves_the_status(client, cohort, ada, rounds):
    response = post(client, cohort, sample("booking_created", type="final-interview"))
    assert refreshed(ada).status == "waiting_first_round"
    assert WebhookDelivery.objects.get(pk=response.json()["delivery"]).attention == (
        "Booked the second-round interview while waiting for round 1.")


def test_the_right_rounds_event_type_by_numeric_id_schedules(client, cohort, ada, rounds):
    response = post(client, cohort, sample("booking_created", type="renamed-slug", eventTypeId=111))
    assert refreshed(ada).status == "first_round_scheduled"
    assert WebhookDelivery.objects.get(pk=response.json()["delivery"]).attention == ""


def test_unlisted_event_types_and_cohorts_without_rounds_behave_as_before(client, cohort, ada, rounds):
    post(client, cohort, sample("booking_created", type="coffee-chat"))
    assert refreshed(ada).status == "first_round_scheduled"
    other = CohortFactory()
    carol = ApplicationFactory(cohort=other, status="waiting_second_round", contact_email="ada.lovelace@example.org")
    post(client, other, sample("booking_created", type="first-interview"))
    assert refreshed(carol).status == "second_round_scheduled"


def test_the_right_booking_after_a_wrong_round_one_schedules(client, cohort, rounds):
    mary = ApplicationFactory(cohort=cohort, status="waiting_second_round", contact_email="ada.lovelace@example.org")
    post(client, cohort, sample("booking_created", type="first-interview"))
    right = sample("booking_created", type="final-interview", uid="Sec0ndR0undUid00000000",
                   iCalUID="Sec0ndR0undUid00000000@Cal.com", createdAt="2026-06-03T09:00:00.000Z")
    post(client, cohort, right)
    mary = refreshed(mary)
    assert (mary.status, mary.interview_booking_uid) == ("second_round_scheduled", "Sec0ndR0undUid00000000")
