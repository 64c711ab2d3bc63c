"""Interviews scheduled outside any scheduling tool: Schedule offline, Edit, Clear, Confirm."""

import zoneinfo
from datetime import datetime, timedelta, timezone

import pytest
from django.test import Client
from django.urls import reverse

from applications.models import StatusChange, UserSettings
from scheduling import handmade
from scheduling.models import Booking, ScheduleChange

from .calcom_helpers import post, sample
from .factories import ApplicationFactory, MembershipFactory, UserFactory
from .demo import seed_quick_start_demo

UTC = timezone.utc
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
CAL_UID = "k7Qm3XyZp2RvT9wLbN4sHd"


def url(name, application):
    return reverse(f"scheduling:{name}", args=[application.cohort.slug, application.pk])


def when(days=5, hour=10, zone="Europe/Paris", **extra):
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return {"date": day.isoformat(), "time": f"{hour:02d}:00", "time_zone": zone, "duration": "45",
            "meeting_url": "", "location": "Office 3B, Northwind House", "note": "Bring the portfolio",
            **extra}


def refreshed(application):
    application.refresh_from_db()
    return application


def test_schedule_offline_form_defaults_to_the_viewers_time_zone(admin_client, org_admin, ada):
    UserSettings.objects.create(user=org_admin, time_zone="America/Chicago")
    response = admin_client.get(url("offline_schedule", ada))
    assert response.status_code == 200
    assert '<option value="America/Chicago" selected>' in response.content.decode()


def test_schedule_offline_acts_like_a_booking_created(admin_client, org_admin, ada):
    response = admin_client.post(url("offline_schedule", ada), when(hour=10))
    assert response.status_code == 302
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.current_stage == "first_round"
    assert ada.interview_kind == "offline" and not ada.interview_unverified
    assert ada.interview_start.astimezone(PARIS).hour == 10
    assert ada.interview_end - ada.interview_start == timedelta(minutes=45)
    booking = Booking.objects.get(application=ada)
    assert booking.kind == "offline" and booking.state == "accepted"
    assert booking.location == "Office 3B, Northwind House" and booking.created_by == org_admin
    change = StatusChange.objects.get(application=ada)
    assert (change.old_status, change.new_status, change.user) == (
        "waiting_first_round", "first_round_scheduled", org_admin)
    assert change.note.startswith("Scheduled offline: ")
    line = ScheduleChange.objects.get(application=ada)
    assert line.action == "offline_scheduled" and line.user == org_admin
    assert "Office 3B" in line.detail and "Bring the portfolio" in line.detail

    page = admin_client.get(reverse("applications:detail", args=[ada.cohort.slug, ada.pk])).content.decode()
    assert "Scheduled offline" in page and "Office 3B, Northwind House" in page
    assert url("offline_edit", ada) in page and url("offline_clear", ada) in page


def test_edit_moves_the_interview_and_keeps_the_status(admin_client, org_admin, ada):
    admin_client.post(url("offline_schedule", ada), when(hour=10))
    form = admin_client.get(url("offline_edit", ada)).content.decode()
    assert 'value="10:00"' in form and "Office 3B" in form
    response = admin_client.post(url("offline_edit", ada), when(days=6, hour=15, location="Room 4"))
    assert response.status_code == 302
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_start.astimezone(PARIS).hour == 15
    assert Booking.objects.filter(application=ada).count() == 1
    assert Booking.objects.get(application=ada).location == "Room 4"
    assert StatusChange.objects.filter(application=ada).count() == 1
    edited = ScheduleChange.objects.get(application=ada, action="offline_edited")
    assert edited.user == org_admin and "Moved from" in edited.detail and "Room 4" in edited.detail


def test_clear_reverts_to_waiting_with_history(admin_client, org_admin, ada):
    admin_client.post(url("offline_schedule", ada), when())
    response = admin_client.post(url("offline_clear", ada))
    assert response.status_code == 302
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round"
    assert ada.interview_start is None and ada.interview_kind == ""
    assert Booking.objects.get(application=ada).state == "cancelled"
    changes = list(StatusChange.objects.filter(application=ada).order_by("pk"))
    assert [(c.old_status, c.new_status, c.user) for c in changes] == [
        ("waiting_first_round", "first_round_scheduled", org_admin),
        ("first_round_scheduled", "waiting_first_round", org_admin),
    ]
    assert ScheduleChange.objects.filter(application=ada, action="offline_cleared", user=org_admin).exists()


def test_confirm_an_applicants_booking(admin_client, org_admin, ada):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    handmade.record_applicant_booking(ada, start=start, time_zone="Europe/Paris")
    assert refreshed(ada).interview_unverified
    page = admin_client.get(reverse("applications:detail", args=[ada.cohort.slug, ada.pk])).content.decode()
    assert "Applicant says booked, unverified" in page and url("applicant_confirm", ada) in page

    response = admin_client.post(url("applicant_confirm", ada))
    assert response.status_code == 302
    ada = refreshed(ada)
    assert not ada.interview_unverified and ada.status == "first_round_scheduled"
    booking = Booking.objects.get(application=ada)
    assert booking.verified_by == org_admin and booking.verified_at is not None
    assert ScheduleChange.objects.filter(application=ada, action="applicant_confirmed", user=org_admin).exists()
    # Confirming twice changes nothing more.
    assert not handmade.confirm_applicant_booking(ada, user=org_admin).changed


def test_clear_of_an_applicants_booking_rejects_it(admin_client, ada):
    handmade.record_applicant_booking(ada, start=datetime.now(UTC) + timedelta(days=3), time_zone="UTC")
    admin_client.post(url("offline_clear", ada))
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round" and not ada.interview_unverified


def test_a_calcom_cancel_of_the_replaced_booking_leaves_the_offline_interview(client, admin_client, cohort, ada):
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    admin_client.post(url("offline_schedule", ada), when())
    ada = refreshed(ada)
    assert ada.interview_kind == "offline"
    post(client, cohort, sample("booking_cancelled", uid=CAL_UID))
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_kind == "offline"


def test_a_later_calcom_booking_cancel_and_reschedule_behave_as_after_a_calcom_booking(
        client, admin_client, cohort, ada):
    admin_client.post(url("offline_schedule", ada), when())
    # The applicant books on Cal.com afterwards: the newest booking wins, as between two Cal.com ones.
    created = sample("booking_created", createdAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    assert post(client, cohort, created).json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.interview_kind == "calcom" and ada.interview_booking_uid == CAL_UID
    assert ada.status == "first_round_scheduled"
    # Its reschedule follows the Cal.com chain...
    moved = sample("booking_rescheduled", createdAt=(datetime.now(UTC) + timedelta(seconds=1)).isoformat()
                   .replace("+00:00", "Z"))
    post(client, cohort, moved)
    ada = refreshed(ada)
    assert ada.interview_kind == "calcom" and ada.interview_booking_uid != CAL_UID
    # ...and its cancel unschedules the application, as the cancel of the current booking does.
    cancel = sample("booking_cancelled", createdAt=(datetime.now(UTC) + timedelta(seconds=2)).isoformat()
                    .replace("+00:00", "Z"))
    post(client, cohort, cancel)
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round"
    assert StatusChange.objects.filter(application=ada).count() == 2


def test_a_status_that_takes_no_interview_is_refused_with_a_reason(admin_client, cohort):
    deciding = ApplicationFactory(cohort=cohort, status="needs_first_decision", current_stage="first_round")
    response = admin_client.post(url("offline_schedule", deciding), when())
    assert response.status_code == 409
    assert "takes no interview" in response.content.decode()
    assert not Booking.objects.filter(application=deciding).exists()


def test_edit_and_clear_refuse_a_calcom_interview(client, admin_client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    response = admin_client.post(url("offline_clear", ada), follow=True)
    assert "change or cancel it there" in response.content.decode()
    assert refreshed(ada).status == "first_round_scheduled"
    response = admin_client.get(url("offline_edit", ada), follow=True)
    assert "no offline or applicant-reported interview to edit" in response.content.decode()


def test_invalid_offline_form_is_explained(admin_client, ada):
    response = admin_client.post(url("offline_schedule", ada), when(time_zone="Mars/Olympus"))
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    assert refreshed(ada).status == "waiting_first_round"


def test_revoke_and_create_the_applicants_link(admin_client, org_admin, ada):
    from scheduling.applicant import token_for

    key = token_for(ada).key
    page = admin_client.get(reverse("applications:detail", args=[ada.cohort.slug, ada.pk])).content.decode()
    assert f"/i/{key}/" in page
    admin_client.post(url("applicant_link_revoke", ada))
    page = admin_client.get(reverse("applications:detail", args=[ada.cohort.slug, ada.pk])).content.decode()
    assert f"/i/{key}/" not in page and "Link revoked" not in page and "No working link" in page
    assert "Applicant page link revoked" in page  # the timeline line
    admin_client.post(url("applicant_link_issue", ada))
    assert token_for(ada).key != key


ENDPOINTS = [("offline_schedule", "get"), ("offline_schedule", "post"), ("offline_edit", "get"),
             ("offline_edit", "post"), ("offline_clear", "post"), ("applicant_confirm", "post"),
             ("applicant_link_revoke", "post"), ("applicant_link_issue", "post")]


@pytest.mark.parametrize("name,method", ENDPOINTS)
def test_outsider_gets_404_on_every_admin_endpoint(client, outsider, ada, name, method):
    client.force_login(outsider)
    response = getattr(client, method)(url(name, ada), when() if method == "post" else None)
    assert response.status_code == 404
    assert refreshed(ada).status == "waiting_first_round"


@pytest.mark.parametrize("name,method", ENDPOINTS)
def test_a_member_who_is_not_an_admin_gets_403(client, cohort, ada, name, method):
    member = UserFactory(username="reviewer")
    MembershipFactory(user=member, organization=cohort.organization, role="member")
    client.force_login(member)
    response = getattr(client, method)(url(name, ada), when() if method == "post" else None)
    assert response.status_code == 403
    assert refreshed(ada).status == "waiting_first_round"


@pytest.mark.parametrize("name,method", ENDPOINTS)
def test_anonymous_is_sent_to_log_in(ada, name, method):
    response = getattr(Client(), method)(url(name, ada))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_pipeline_marks_offline_and_unverified_interviews(admin_client, cohort, ada):
    handmade.schedule_offline(ada, start=datetime(2027, 6, 8, 12, 0, tzinfo=UTC),
                              end=datetime(2027, 6, 8, 13, 0, tzinfo=UTC), time_zone="UTC", user=None)
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round",
                               current_stage="first_round")
    handmade.record_applicant_booking(grace, start=datetime(2027, 6, 8, 14, 0, tzinfo=UTC), time_zone="UTC")
    text = admin_client.get(reverse("applications:list", args=[cohort.slug])).content.decode()
    assert "Scheduled offline" in text
    assert "Applicant says booked: Tue 8 Jun 14:00, unverified" in text


def test_the_quick_start_story(db):
    """Issue 9's "done when" on the demo: I've booked → unverified → confirmed; offline → cleared."""
    import io
    import re as re_

    from django.core.management import call_command

    out = io.StringIO()
    seed_quick_start_demo(stdout=out)
    page = re_.search(r"Ada's own page:\s+http://[^/]+(/i/[\w-]+/)", out.getvalue()).group(1)
    applicant = Client(REMOTE_ADDR="10.99.0.1")
    assert applicant.get(page).status_code == 200  # no login
    day = (datetime.now(UTC) + timedelta(days=8)).date().isoformat()
    booked = applicant.post(page + "booked/", {"date": day, "time": "11:00", "time_zone": "Europe/London"})
    assert booked.status_code == 303
    from applications.models import Application

    ada = Application.objects.get(public_id="app_7f3c2a91")
    assert ada.status == "first_round_scheduled" and ada.interview_unverified

    admin = Client()
    # Through the login form: django-axes checks every login against its request (Client.login has none).
    assert admin.post("/accounts/login/", {"username": "admin", "password": "cohortos-demo"}).status_code == 302
    admin.post(url("applicant_confirm", ada))
    assert not refreshed(ada).interview_unverified

    emmy = Application.objects.get(contact_email="emmy.noether@example.org")
    admin.post(url("offline_schedule", emmy), when())
    assert refreshed(emmy).status == "first_round_scheduled"
    admin.post(url("offline_clear", emmy))
    assert refreshed(emmy).status == "waiting_first_round"
    history = admin.get(reverse("applications:detail", args=[emmy.cohort.slug, emmy.pk])).content.decode()
    assert "Scheduled offline" in history and "Offline interview cleared" in history


def test_members_see_the_schedule_but_no_controls_nor_the_applicants_link(client, cohort, ada):
    from scheduling.applicant import token_for

    key = token_for(ada).key
    handmade.schedule_offline(ada, start=datetime.now(UTC) + timedelta(days=2),
                              end=datetime.now(UTC) + timedelta(days=2, hours=1), time_zone="UTC", user=None)
    member = UserFactory(username="reader")
    MembershipFactory(user=member, organization=cohort.organization, role="member")
    client.force_login(member)
    page = client.get(reverse("applications:detail", args=[cohort.slug, ada.pk])).content.decode()
    assert "Scheduled offline" in page
    assert key not in page and url("offline_clear", ada) not in page and url("applicant_link_revoke", ada) not in page


def test_closed_applications_offer_no_schedule_offline(admin_client, cohort):
    done = ApplicationFactory(cohort=cohort, status="declined", current_stage="decision")
    page = admin_client.get(reverse("applications:detail", args=[cohort.slug, done.pk])).content.decode()
    assert url("offline_schedule", done) not in page


def test_clear_keeps_the_admins_reason(admin_client, ada):
    admin_client.post(url("offline_schedule", ada), when())
    admin_client.post(url("offline_clear", ada), {"reason": "Candidate withdrew by phone"})
    line = ScheduleChange.objects.get(application=ada, action="offline_cleared")
    assert line.detail.endswith(": Candidate withdrew by phone")
    assert Booking.objects.get(application=ada).reason == "Candidate withdrew by phone"


def test_edit_can_remove_the_link_and_the_place(admin_client, ada):
    admin_client.post(url("offline_schedule", ada), when(meeting_url="https://meet.example/x"))
    assert refreshed(ada).interview_meeting_url == "https://meet.example/x"
    admin_client.post(url("offline_edit", ada), when(meeting_url="", location=""))
    ada = refreshed(ada)
    assert ada.interview_meeting_url == "" and ada.interview_location == ""
    assert Booking.objects.get(application=ada).kind == "offline"
