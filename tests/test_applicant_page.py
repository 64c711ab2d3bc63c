"""The applicant's own page, /i/<token>/: tokens, what it shows, "I've booked", limits."""

import re
from datetime import datetime, timedelta, timezone
import random

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from applications.models import StatusChange
from scheduling import links
from scheduling.applicant import applicant_page_url, revoke_tokens, token_for
from scheduling.handmade import record_applicant_booking
from scheduling.models import ApplicantToken, Booking, ScheduleChange

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, CohortFactory, InterviewRoundFactory

UTC = timezone.utc


def fresh_ip():
    """Return a random private address: per-IP counters (in Redis, too) never carry over."""
    return "10." + ".".join(str(random.randrange(256)) for _ in range(3))


@pytest.fixture
def client():
    """A client with an address of its own, so per-IP limits never carry over between tests."""
    return Client(REMOTE_ADDR=fresh_ip())


@pytest.fixture
def page(ada):
    return reverse("scheduling:applicant_page", args=[token_for(ada).key])


def booked_url(application):
    return reverse("scheduling:applicant_booked", args=[token_for(application).key])


def future(days=10, hour=14):
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return day, f"{hour:02d}:00"


def form(days=10, hour=14, zone="Europe/Paris", link=""):
    day, clock = future(days, hour)
    return {"date": day.isoformat(), "time": clock, "time_zone": zone, "meeting_url": link}


def refreshed(application):
    application.refresh_from_db()
    return application


# --- tokens ------------------------------------------------------------------------------


def test_token_is_long_random_and_reused_until_revoked(ada):
    token = token_for(ada)
    # 32 random bytes, base64url: 43 characters, 256 bits.
    assert len(token.key) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token.key)
    assert token_for(ada).pk == token.pk
    assert ApplicantToken.objects.filter(application=ada).count() == 1


def test_tokens_of_two_applications_differ_and_each_shows_only_its_own(client, cohort, ada):
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round")
    ada_page = client.get(reverse("scheduling:applicant_page", args=[token_for(ada).key]))
    grace_page = client.get(reverse("scheduling:applicant_page", args=[token_for(grace).key]))
    assert ada_page.status_code == grace_page.status_code == 200
    # First names only ("Hello Ada"); surnames never: they would be the other applicant's.
    assert "Hello Ada." in ada_page.content.decode() and "Grace" not in ada_page.content.decode()
    assert "Hello Grace." in grace_page.content.decode() and "Lovelace" not in grace_page.content.decode()
    # Neither page carries the other's identifiers, nor an email address of anyone.
    assert ada.contact_email not in grace_page.content.decode()
    assert ada.public_id not in ada_page.content.decode()


def test_page_opens_without_login_and_names_cohort_organization_and_round(client, page, ada, cohort):
    response = client.get(page)
    assert response.status_code == 200
    text = response.content.decode()
    assert cohort.name in text and cohort.organization.name in text
    assert "first-round interview" in text
    assert response["Referrer-Policy"] == "same-origin"  # the token never reaches Cal.com
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert "<script>" not in text  # no inline script: CSP is coming (issue 14)


@pytest.mark.parametrize("change", ["unknown", "tampered", "expired", "revoked"])
def test_unknown_tampered_expired_or_revoked_tokens_get_the_same_plain_404(client, ada, cohort, change):
    cohort.reply_to_email = "fellowship@northwind.example"
    cohort.save()
    token = token_for(ada)
    key = token.key
    if change == "unknown":
        key = "x" * 43
    elif change == "tampered":
        key = key[:-1] + ("A" if key[-1] != "A" else "B")
    elif change == "expired":
        ApplicantToken.objects.filter(pk=token.pk).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    else:
        revoke_tokens(ada, user=None)
    response = client.get(reverse("scheduling:applicant_page", args=[key]))
    assert response.status_code == 404
    text = response.content.decode()
    assert "This link is no longer valid" in text
    assert "Hello" not in text and "Lovelace" not in text and ada.contact_email not in text
    if change in ("expired", "revoked"):
        # A link that was real names whom to write to, which the invitation said already.
        assert "fellowship@northwind.example" in text
    else:
        assert "northwind.example" not in text and cohort.name not in text


def test_expiry_follows_the_setting_and_the_next_invitation_gets_a_new_token(client, ada, settings):
    settings.APPLICANT_PAGE_DAYS = 3
    token = token_for(ada)
    assert token.expires_at - token.created_at == timedelta(days=3)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=3, minutes=1)):
        assert client.get(reverse("scheduling:applicant_page", args=[token.key])).status_code == 404
        fresh = token_for(ada)
        assert fresh.key != token.key
        assert client.get(reverse("scheduling:applicant_page", args=[fresh.key])).status_code == 200
    assert ApplicantToken.objects.get(pk=token.pk).revoked_at is not None


def test_revoked_token_is_replaced_by_the_next_invitations_link(client, ada, org_admin):
    old = token_for(ada).key
    assert revoke_tokens(ada, user=org_admin) == 1
    new_url = links.applicant_page_url(ada)  # what the next invitation renders
    assert old not in new_url
    assert client.get(reverse("scheduling:applicant_page", args=[old])).status_code == 404
    assert client.get(new_url.removeprefix("http://127.0.0.1:8000")).status_code == 200
    assert ScheduleChange.objects.filter(application=ada, action="link_revoked", user=org_admin).exists()


def test_invitations_render_the_applicant_page_url(ada, settings):
    settings.SITE_URL = "https://apply.northwind.example"
    url = links.applicant_page_url(ada)
    assert url == f"https://apply.northwind.example/i/{token_for(ada).key}/"


def test_page_costs_a_bounded_number_of_queries(client, page, django_assert_max_num_queries):
    client.get(page)
    with django_assert_max_num_queries(8):
        assert client.get(page).status_code == 200


# --- what the page shows -----------------------------------------------------------------


def test_schedule_button_is_the_bound_booking_link_of_the_round(client, page, ada, cohort):
    InterviewRoundFactory(cohort=cohort, number=1, booking_url="https://cal.com/northwind/first")
    text = client.get(page).content.decode()
    assert "Schedule interview" in text
    ref = links.make_ref(ada, 1)
    assert f"metadata[application_id]={ref}" in text.replace("&amp;", "&")


def test_booked_interview_shows_in_the_bookings_zone_with_provider_links(client, page, ada, cohort):
    data = sample("booking_created")
    data["payload"]["attendees"][0]["timeZone"] = "Asia/Tokyo"
    assert post(Client(), cohort, data).json()["outcome"] == "applied"
    text = client.get(page).content.decode()
    # 14:00 UTC is 23:00 in Tokyo; the exact instant is in the datetime attribute for the script.
    assert "Tuesday 9 June 2026, 23:00" in text and "Asia/Tokyo time" in text
    assert 'datetime="2026-06-09T14:00:00+00:00"' in text
    assert "30 minutes" in text
    assert "https://meet.google.com/xqv-trbn-kfo" in text
    uid = "k7Qm3XyZp2RvT9wLbN4sHd"
    assert f'href="https://cal.com/reschedule/{uid}"' in text
    assert f'href="https://cal.com/booking/{uid}?cancel=true&amp;allRemainingBookings=false"' in text
    assert "I’ve booked my interview" not in text  # a webhook cohort needs no self-report


def test_pending_booking_and_host_reschedule_request_are_explained(client, page, ada, cohort):
    post(Client(), cohort, with_email(sample("booking_requested"), ada.contact_email))
    text = client.get(page).content.decode()
    assert "Waiting for confirmation" in text and "waiting for the interviewer to confirm" in text

    post(Client(), cohort, sample("booking_created"))
    post(Client(), cohort, sample("booking_cancelled", uid="k7Qm3XyZp2RvT9wLbN4sHd", requestReschedule=True,
                                  cancellationReason="I am travelling that day"))
    text = client.get(page).content.decode()
    assert "Please choose a new time" in text and "I am travelling that day" in text
    assert "https://cal.com/reschedule/" in text


def test_closed_application_says_nothing_about_the_decision(client, cohort):
    declined = ApplicationFactory(cohort=cohort, applicant_name="Dan Declined", status="declined")
    text = client.get(reverse("scheduling:applicant_page", args=[token_for(declined).key])).content.decode()
    assert "Nothing to schedule" in text
    assert "eclined" not in text and "I’ve booked" not in text


# --- "I've booked my interview" ----------------------------------------------------------


def test_ive_booked_schedules_through_the_booking_path_marked_unverified(client, ada):
    response = client.post(booked_url(ada), form(zone="Europe/Paris", link="https://meet.example/abc"))
    assert response.status_code == 303
    assert response["Location"].endswith("?booked=1")
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.current_stage == "first_round"
    assert ada.interview_kind == "applicant" and ada.interview_unverified is True
    assert ada.interview_meeting_url == "https://meet.example/abc"
    assert ada.interview_time_zone == "Europe/Paris"
    day, _ = future()
    paris = ada.interview_start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert (paris.date(), paris.hour) == (day, 14)
    change = StatusChange.objects.get(application=ada)
    assert (change.old_status, change.new_status) == ("waiting_first_round", "first_round_scheduled")
    assert change.cause == "Confirmed by the applicant" and change.user is None and change.delivery is None
    assert ScheduleChange.objects.get(application=ada).by_applicant
    followed = client.get(response["Location"]).content.decode()
    assert "Thank you" in followed and "The team will confirm it" in followed


def test_submitting_twice_updates_the_one_booking(client, ada):
    client.post(booked_url(ada), form(hour=14))
    client.post(booked_url(ada), form(hour=14))  # the same again: nothing new
    assert Booking.objects.filter(application=ada).count() == 1
    client.post(booked_url(ada), form(hour=16))  # a new time: the same row moves
    assert Booking.objects.filter(application=ada).count() == 1
    ada = refreshed(ada)
    assert ada.interview_start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).hour == 16
    assert StatusChange.objects.filter(application=ada).count() == 1
    assert list(ScheduleChange.objects.filter(application=ada).order_by("pk")
                .values_list("action", flat=True)) == ["applicant_booked", "applicant_updated"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_submissions_at_once_make_one_booking(cohort):
    from .threads import run_together

    ada = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    day, _ = future()
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    results = run_together(*[lambda: record_applicant_booking(ada, start=start, time_zone="UTC")] * 4)
    assert all(not isinstance(r, Exception) for r in results), results
    assert Booking.objects.filter(application=ada, kind="applicant").count() == 1
    assert refreshed(ada).status == "first_round_scheduled"


def test_terminal_application_changes_nothing_and_says_so_politely(client, cohort):
    done = ApplicationFactory(cohort=cohort, status="accepted")
    response = client.post(booked_url(done), form())
    assert response.status_code == 409
    assert "nothing was changed" in response.content.decode()
    assert not Booking.objects.filter(application=done).exists()
    assert refreshed(done).status == "accepted"


def test_applicant_cannot_self_report_over_a_scheduled_interview(client, ada, cohort):
    post(Client(), cohort, sample("booking_created"))
    response = client.post(booked_url(ada), form())
    assert response.status_code == 409  # a webhook cohort: the booking reaches us by itself
    assert refreshed(ada).interview_kind == "calcom"


def test_invalid_input_is_explained_and_changes_nothing(client, ada):
    bad = form()
    bad["date"] = "2026-02-30"
    bad["meeting_url"] = "javascript:alert(1)"
    response = client.post(booked_url(ada), bad)
    assert response.status_code == 422
    text = response.content.decode()
    assert "Enter a valid date." in text and "Enter a web link" in text
    assert refreshed(ada).status == "waiting_first_round"


def test_a_time_that_does_not_exist_in_the_zone_is_refused(client, ada):
    with time_machine.travel(datetime(2027, 3, 1, tzinfo=UTC)):
        response = client.post(booked_url(ada), {"date": "2027-03-28", "time": "02:30",
                                                  "time_zone": "Europe/Paris", "meeting_url": ""})
    assert response.status_code == 422
    assert "does not exist" in response.content.decode()


def test_a_provider_booking_replaces_the_applicants_word(client, ada, cohort):
    client.post(booked_url(ada), form())
    claim = Booking.objects.get(application=ada, kind="applicant")
    assert post(Client(), cohort, sample("booking_created")).json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.interview_kind == "calcom" and not ada.interview_unverified
    assert ada.interview_booking_uid == "k7Qm3XyZp2RvT9wLbN4sHd"
    assert Booking.objects.get(pk=claim.pk).state == "cancelled"
    assert ada.status == "first_round_scheduled"
    assert ScheduleChange.objects.filter(application=ada, action="applicant_replaced").exists()


def test_posting_needs_the_csrf_token(ada):
    strict = Client(enforce_csrf_checks=True, REMOTE_ADDR=fresh_ip())
    assert strict.post(booked_url(ada), form()).status_code == 403
    assert refreshed(ada).status == "waiting_first_round"


def test_form_offers_the_bookings_zone_and_marks_it_for_the_browser(client, page):
    text = client.get(page).content.decode()
    select = re.search(r'<select[^>]*name="time_zone"[^>]*>', text).group(0)
    assert "data-browser-zone" in select and 'id="id_time_zone"' in select
    assert '<option value="UTC" selected>' in text  # the organization's zone, no booking yet
    assert re.search(r'<label for="id_date">Date</label>', text)
    assert 'src="/static/applicant.js"' in text


# --- rate limits -------------------------------------------------------------------------


def test_rate_limit_per_token(client, page, settings):
    settings.APPLICANT_RATE_PER_TOKEN = "3/m"
    assert [client.get(page).status_code for _ in range(3)] == [200] * 3
    other_ip = Client(REMOTE_ADDR=fresh_ip())
    limited = other_ip.get(page)  # the token's budget is spent, whatever the address
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    assert "Please wait a minute" in limited.content.decode()


def test_rate_limit_per_ip_counts_unknown_tokens_too(db, client, settings):
    settings.APPLICANT_RATE_PER_IP = "5/m"
    codes = [client.get(reverse("scheduling:applicant_page", args=[f"guess{i}"])).status_code
             for i in range(7)]
    assert codes == [404] * 5 + [429] * 2


def test_posts_have_a_tighter_budget(client, ada, settings):
    settings.APPLICANT_POST_RATE_PER_TOKEN = "2/h"
    codes = [client.post(booked_url(ada), form(hour=h)).status_code for h in (9, 10, 11)]
    assert codes == [303, 303, 429]


def test_a_cache_outage_does_not_lock_applicants_out(client, page, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def broken(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr("scheduling.applicant_views.is_ratelimited", broken)
    assert client.get(page).status_code == 200


def test_other_cohorts_tokens_cannot_reach_this_application(client, ada):
    other = ApplicationFactory(cohort=CohortFactory(), status="waiting_first_round")
    response = client.post(booked_url(other), form())
    assert response.status_code == 303
    assert refreshed(ada).status == "waiting_first_round"
    assert refreshed(other).status == "first_round_scheduled"


def test_applicant_page_url_is_absolute(ada, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert applicant_page_url(ada).startswith("http://127.0.0.1:8000/i/")


def test_after_the_interview_the_page_says_nothing_to_schedule(client, cohort):
    held = ApplicationFactory(cohort=cohort, status="needs_first_decision", current_stage="first_round")
    text = client.get(reverse("scheduling:applicant_page", args=[token_for(held).key])).content.decode()
    assert "Nothing to schedule" in text and "I’ve booked" not in text


def test_mail_scanners_may_check_the_link_with_head(client, page):
    assert client.head(page).status_code == 200


@pytest.mark.parametrize("url,provider,offered", [
    ("https://cal.com/northwind/first", "calcom", False),
    ("https://cal.com/northwind/first", "calendly", True),   # Cal.com page, but only Calendly posts to us
    ("https://calendly.com/northwind/first", "calendly", False),
    ("https://calendar.app.google/n0rthw1nd", "calcom", True),  # Google pages send no webhooks
])
def test_ive_booked_is_offered_only_where_no_webhook_reaches_us(client, page, cohort, url, provider, offered):
    from scheduling.models import WebhookDelivery

    InterviewRoundFactory(cohort=cohort, number=1, booking_url=url)
    WebhookDelivery.objects.create(cohort=cohort, provider=provider, body=b"{}", sha256="0" * 64)
    assert ("I’ve booked my interview" in client.get(page).content.decode()) == offered


# --- the cohort's reply-to address -------------------------------------------------------


def test_invitations_carry_the_applicant_page_and_the_cohorts_reply_to(ada, cohort, org_admin,
                                                                      django_capture_on_commit_callbacks):
    from django.core import mail

    from scheduling import invitations

    cohort.reply_to_email = "fellowship@northwind.example"
    cohort.save()
    InterviewRoundFactory(cohort=cohort, number=1)
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invite(ada, user=org_admin)
    [email] = mail.outbox
    assert email.reply_to == ["fellowship@northwind.example"]
    page = re.search(r"http://[^\s]+/i/([\w-]+)/", email.body)
    assert page and page.group(1) == token_for(ada).key
    assert Client(REMOTE_ADDR=fresh_ip()).get(f"/i/{page.group(1)}/").status_code == 200


def test_admins_set_the_reply_to_on_the_settings_page(admin_client, cohort):
    settings_page = admin_client.get(reverse("scheduling:settings", args=[cohort.slug])).content.decode()
    assert "Reply-to address for applicants" in settings_page
    save = reverse("scheduling:applicant_contact", args=[cohort.slug])
    assert admin_client.post(save, {"reply_to_email": "not an address"}).status_code == 422
    assert admin_client.post(save, {"reply_to_email": "talent@northwind.example"}).status_code == 302
    cohort.refresh_from_db()
    assert cohort.reply_to_email == "talent@northwind.example"


def test_reply_to_is_for_admins_only(client, outsider, cohort):
    from .factories import MembershipFactory, UserFactory

    save = reverse("scheduling:applicant_contact", args=[cohort.slug])
    client.force_login(outsider)
    assert client.post(save, {"reply_to_email": "x@evil.example"}).status_code == 404
    member = UserFactory(username="reader2")
    MembershipFactory(user=member, organization=cohort.organization, role="member")
    client.force_login(member)
    assert client.post(save, {"reply_to_email": "x@evil.example"}).status_code == 403
    cohort.refresh_from_db()
    assert cohort.reply_to_email == ""
