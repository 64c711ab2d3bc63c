"""Issue 12 through HTTP: the change stamp and 304s, Needs action first, the home page's
attention list, decisions (confirm, reopen), members' read-only UI, htmx auth redirects,
CSV export and search."""

import csv
import html
import io
import json
import zoneinfo
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications.models import Application, Cohort, Membership
from orphans.models import OrphanedInterview
from orphans.services import dismiss_orphan, match_orphan, restore_orphan

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, MembershipFactory, UserFactory
from .test_applications_views import HX, detail_url, list_url, row_html, row_ids, status_url


def version(cohort):
    return Cohort.objects.values_list("version", flat=True).get(pk=cohort.pk)


def badge_url(cohort):
    return reverse("applications:orphan_badge", args=[cohort.slug])


@pytest.fixture
def member_client(client, cohort):
    user = UserFactory(username="member")
    MembershipFactory(user=user, organization=cohort.organization, role=Membership.Role.MEMBER)
    client.force_login(user)
    return client


# --- the change stamp -----------------------------------------------------------------------


def test_every_change_path_bumps_the_cohort_version_after_commit(
    client, cohort, ada, org_admin, django_capture_on_commit_callbacks
):
    def bumps(action):
        before = version(cohort)
        with django_capture_on_commit_callbacks(execute=True):
            action()
        return version(cohort) - before

    assert bumps(lambda: ada.move_to("declined", user=org_admin)) >= 1
    ApplicationFactory(cohort=cohort, status="waiting_first_round",
                       contact_email="grace@example.org", public_id="app_grace")
    # A webhook: sync_application changes the schedule and move_to the status.
    assert bumps(lambda: post(client, cohort, sample("booking_created", metadata={"application_id": "app_grace"}))) >= 1
    # An orphan recorded, dismissed, restored, matched.
    assert bumps(lambda: post(client, cohort, with_email(sample("booking_created", metadata={},
                                                                 uid="orphanUid1", iCalUID="orphanUid1@Cal.com"),
                                                       "nobody@example.org"))) >= 1
    found = OrphanedInterview.objects.get(cohort=cohort)
    assert bumps(lambda: dismiss_orphan(found, user=org_admin, reason="spam")) == 1
    assert bumps(lambda: restore_orphan(found, user=org_admin)) == 1
    fresh = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    assert bumps(lambda: match_orphan(found, fresh, user=org_admin)) >= 1


def test_a_poll_with_the_current_etag_gets_a_304_without_counting(admin_client, cohort, django_assert_max_num_queries):
    ApplicationFactory.create_batch(3, cohort=cohort, status="new")
    first = admin_client.get(list_url(cohort), **HX)
    etag = first["ETag"]
    assert etag.startswith('W/"') and "no-cache" in first["Cache-Control"]
    assert f'data-etag="{html.escape(etag)}"' in first.content.decode()  # what app.js sends back
    with CaptureQueriesContext(connection) as queries:
        again = admin_client.get(list_url(cohort), HTTP_IF_NONE_MATCH=etag, **HX)
    assert again.status_code == 304 and again.content == b""
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "APPLICATIONS_APPLICATION" not in sql
    assert len(queries.captured_queries) <= 5  # session, user, cohort, role, time zone
    badge = admin_client.get(badge_url(cohort), **HX)
    assert admin_client.get(badge_url(cohort), HTTP_IF_NONE_MATCH=badge["ETag"], **HX).status_code == 304


def test_a_change_or_the_next_minute_gives_a_new_etag(admin_client, cohort, org_admin):
    a = ApplicationFactory(cohort=cohort, status="new")
    with time_machine.travel(timezone.now().replace(second=5), tick=False):
        etag = admin_client.get(list_url(cohort), **HX)["ETag"]
        Cohort.objects.filter(pk=cohort.pk).update(version=99)  # what a committed change does
        changed = admin_client.get(list_url(cohort), HTTP_IF_NONE_MATCH=etag, **HX)
        assert changed.status_code == 200 and row_ids(changed) == [a.pk]
        etag = changed["ETag"]
    with time_machine.travel(timezone.now().replace(second=5) + timedelta(minutes=1), tick=False):
        # "Now", "Today 14:00" and "Waiting 3 days" move with the clock.
        assert admin_client.get(list_url(cohort), HTTP_IF_NONE_MATCH=etag, **HX).status_code == 200


def test_the_full_page_is_never_a_304(admin_client, cohort):
    etag = admin_client.get(list_url(cohort), **HX)["ETag"]
    assert admin_client.get(list_url(cohort), HTTP_IF_NONE_MATCH=etag).status_code == 200


# --- Needs action first ---------------------------------------------------------------------


def test_needs_action_first_is_the_default_sort_and_pages_stay_right(admin_client, cohort):
    now = timezone.now()
    rest = ApplicationFactory.create_batch(55, cohort=cohort, status="new")
    pending = ApplicationFactory(cohort=cohort, status="waiting_first_round", pending_booking_uid="p",
                                 status_changed_at=now)
    overdue = ApplicationFactory(cohort=cohort, status="waiting_first_round",
                                 status_changed_at=now - timedelta(days=9))
    asked = ApplicationFactory(cohort=cohort, status="waiting_first_round", reschedule_requested=True,
                               status_changed_at=now)
    held = ApplicationFactory(cohort=cohort, status="first_round_scheduled",
                              interview_start=now - timedelta(days=1), interview_end=now - timedelta(hours=23))
    decision = ApplicationFactory(cohort=cohort, status="needs_final_decision")
    first = admin_client.get(list_url(cohort))
    assert row_ids(first)[:5] == [held.pk, asked.pk, overdue.pk, pending.pk, decision.pk]
    second = admin_client.get(list_url(cohort, "?page=2"))
    shown = row_ids(first) + row_ids(second)
    assert len(shown) == len(set(shown)) == 60
    assert set(shown[5:]) == {a.pk for a in rest}
    assert 'selected>Needs action first' in first.content.decode().replace('value="action" ', "")


def test_the_pipeline_filter_keeps_one_state(admin_client, cohort):
    now = timezone.now()
    held = ApplicationFactory(cohort=cohort, status="second_round_scheduled",
                              interview_start=now - timedelta(hours=3), interview_ended_at=now - timedelta(hours=2))
    ApplicationFactory(cohort=cohort, status="second_round_scheduled", interview_start=now + timedelta(days=4))
    response = admin_client.get(list_url(cohort, "?pipeline=held"))
    assert row_ids(response) == [held.pk]
    assert response.context["page"].paginator.count == 1
    assert row_ids(admin_client.get(list_url(cohort, "?pipeline=bogus"))) != [held.pk]  # ignored, not an error


def test_waiting_days_count_from_entering_the_status_not_from_the_last_webhook(client, admin_client, cohort, ada):
    entered = timezone.now() - timedelta(days=9)
    Application.objects.filter(pk=ada.pk).update(status_changed_at=entered, updated_at=entered)
    # A host's pending request touches the row (updated_at) but not the status.
    post(client, cohort, sample("booking_requested", metadata={"application_id": ada.public_id}))
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round" and ada.updated_at > entered
    assert ada.status_changed_at == entered
    ada.move_to("first_round_scheduled")
    assert ada.status_changed_at > entered


def test_a_cohort_sets_its_own_overdue_days(admin_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="waiting_first_round",
                           status_changed_at=timezone.now() - timedelta(days=10))
    assert "pipe-key-overdue" in row_html(admin_client.get(list_url(cohort)), a)
    Cohort.objects.filter(pk=cohort.pk).update(overdue_days=14)
    row = row_html(admin_client.get(list_url(cohort)), a)
    assert "pipe-key-waiting" in row and "Waiting 10 days" in row


# --- the home page --------------------------------------------------------------------------


def test_home_lists_what_needs_attention_and_todays_interviews_with_links(admin_client, cohort):
    now = timezone.now()
    ApplicationFactory(cohort=cohort, status="first_round_scheduled", interview_start=now - timedelta(days=1),
                       interview_end=now - timedelta(days=1) + timedelta(minutes=30))
    ApplicationFactory(cohort=cohort, status="waiting_first_round", status_changed_at=now - timedelta(days=8))
    ApplicationFactory(cohort=cohort, status="waiting_first_round", reschedule_requested=True)
    OrphanedInterview.objects.create(cohort=cohort, booking_uid="o1", email="x@example.org")
    soon = ApplicationFactory(cohort=cohort, status="first_round_scheduled", applicant_name="Soon Person",
                              interview_start=now + timedelta(days=1))
    html = admin_client.get(reverse("home")).content.decode()
    tab = list_url(cohort)
    assert f'href="{tab}?pipeline=held&amp;hide_declined=0">Held, needs decision</a>' in html
    assert f'href="{tab}?pipeline=overdue&amp;hide_declined=0">Waiting too long</a>' in html
    assert f'href="{tab}?pipeline=reschedule&amp;hide_declined=0">Reschedule requested</a>' in html
    assert "Unresolved orphaned interviews" in html
    assert f'href="{tab}?pipeline=tomorrow&amp;sort=interview">Tomorrow' in html
    assert "Soon Person" in html and detail_url(soon) in html
    assert admin_client.get(tab + "?pipeline=tomorrow&sort=interview").context["page"].paginator.count == 1


def test_home_says_when_nothing_needs_attention(admin_client, cohort):
    ApplicationFactory(cohort=cohort, status="accepted")
    assert "Nothing needs you right now." in admin_client.get(reverse("home")).content.decode()


# --- decisions: confirm, reopen ------------------------------------------------------------


def test_the_status_form_starts_on_choose(admin_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="needs_first_decision")
    html = admin_client.get(detail_url(a)).content.decode()
    select = html.split('name="status"')[1].split("</select>")[0]
    assert select.split("<option")[1].startswith(' value="" selected>Choose…')
    response = admin_client.post(status_url(a), {"status": "", "current": a.status})
    assert response.status_code == 422 and "Choose the status to move to." in response.content.decode()


@pytest.mark.parametrize("decision", ["accepted", "waitlist", "declined"])
def test_a_decision_asks_for_confirmation_first(admin_client, cohort, decision):
    a = ApplicationFactory(cohort=cohort, status="needs_final_decision")
    asked = admin_client.post(status_url(a), {"status": decision, "current": a.status, "note": "Panel"}, **HX)
    html = asked.content.decode()
    assert asked.status_code == 200 and "HX-Trigger" not in asked
    assert 'name="confirm" value="1"' in html and "Yes, move to" in html and 'value="Panel"' in html
    a.refresh_from_db()
    assert a.status == "needs_final_decision"
    done = admin_client.post(status_url(a), {"status": decision, "current": a.status, "note": "Panel",
                                             "confirm": "1"}, **HX)
    assert "statusChanged" in json.loads(done["HX-Trigger"])
    a.refresh_from_db()
    assert a.status == decision


def test_a_move_that_needs_no_decision_is_not_asked(admin_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="needs_first_decision")
    response = admin_client.post(status_url(a), {"status": "waiting_second_round", "current": a.status})
    assert response.status_code == 302


def reopen_url(application):
    return reverse("applications:reopen", args=[application.cohort.slug, application.pk])


def test_an_org_admin_reopens_a_decision_with_a_reason(admin_client, cohort, org_admin):
    a = ApplicationFactory(cohort=cohort, status="needs_final_decision")
    a.move_to("declined", user=org_admin)
    html = admin_client.get(detail_url(a)).content.decode()
    reopen = html.split('class="status-form reopen-form"')[1].split("</form>")[0]
    assert '<option value="needs_final_decision" selected>' in reopen  # where it came from
    missing = admin_client.post(reopen_url(a), {"status": "needs_final_decision", "current": "declined"})
    assert missing.status_code == 422 and "Say why the decision is reopened" in missing.content.decode()
    response = admin_client.post(reopen_url(a), {"status": "needs_final_decision", "current": "declined",
                                                 "reason": "New reference arrived"})
    assert response.status_code == 302
    a.refresh_from_db()
    assert (a.status, a.current_stage) == ("needs_final_decision", "second_round")
    change = a.status_changes.first()
    assert (change.old_status, change.new_status, change.user, change.note) == (
        "declined", "needs_final_decision", org_admin, "Reopened: New reference arrived")


def test_reopen_refuses_a_status_outside_the_table(admin_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="accepted")
    response = admin_client.post(reopen_url(a), {"status": "first_round_scheduled", "current": "accepted",
                                                 "reason": "x"})
    assert response.status_code == 422
    assert "cannot be reopened to that status" in response.content.decode()
    a.refresh_from_db()
    assert a.status == "accepted"


def test_nothing_but_reopen_leaves_a_decision(cohort, org_admin):
    from scheduling.status import InvalidTransition

    a = ApplicationFactory(cohort=cohort, status="accepted")
    with pytest.raises(InvalidTransition) as raised:
        a.move_to("needs_final_decision", user=org_admin)
    assert "Status." not in str(raised.value) and "“Accepted”" in str(raised.value)
    with pytest.raises(ValueError):
        a.move_to("needs_final_decision", user=org_admin, reopen=True, note="  ")


# --- members read, admins change ------------------------------------------------------------


def test_a_member_sees_the_application_without_change_controls(member_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="needs_first_decision")
    html = member_client.get(detail_url(a)).content.decode()
    assert "Change status" not in html and "Only an org admin" in html
    declined = ApplicationFactory(cohort=cohort, status="declined")
    assert "Reopen decision" not in member_client.get(detail_url(declined)).content.decode()
    assert member_client.post(reopen_url(declined), {"status": "new", "current": "declined",
                                                     "reason": "x"}).status_code == 403
    row = row_html(member_client.get(list_url(cohort)), a)
    assert "change status" not in row
    OrphanedInterview.objects.create(cohort=cohort, booking_uid="o1", email="x@example.org")
    orphans = member_client.get(reverse("orphans:list", args=[cohort.slug])).content.decode()
    assert "Dismiss</button>" not in orphans and ">Match<" not in orphans and "Only an org admin" in orphans


# --- htmx and expired sessions --------------------------------------------------------------


def test_an_expired_session_redirects_htmx_to_the_login_page_with_next(client, cohort):
    page = f"http://testserver{list_url(cohort)}?status=new"
    response = client.get(badge_url(cohort), HTTP_HX_CURRENT_URL=page, **HX)
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == "/accounts/login/?next=" + "/cohorts/northwind-2026/applications/%3Fstatus%3Dnew"
    # Without htmx: the usual redirect.
    assert client.get(badge_url(cohort)).status_code == 302


def test_a_403_to_htmx_reloads_the_page_with_a_message(member_client, cohort):
    a = ApplicationFactory(cohort=cohort, status="declined")
    page = f"http://testserver{detail_url(a)}"
    response = member_client.post(reopen_url(a), {"status": "new", "current": "declined", "reason": "x"},
                                  HTTP_HX_CURRENT_URL=page, **HX)
    assert response["HX-Redirect"] == detail_url(a)
    assert "You do not have permission" in member_client.get(detail_url(a)).content.decode()


def test_a_foreign_current_url_is_not_followed(client, cohort):
    response = client.get(badge_url(cohort), HTTP_HX_CURRENT_URL="https://evil.example/x", **HX)
    assert response["HX-Redirect"] == "/accounts/login/?next=/"


# --- export and search ----------------------------------------------------------------------


def test_export_csv_streams_the_filtered_list_with_utc_and_local_times(admin_client, cohort):
    cohort.organization.time_zone = "Europe/Paris"
    cohort.organization.save()
    start = (timezone.now() + timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)
    ApplicationFactory(cohort=cohort, applicant_name="=HYPERLINK(1)", status="first_round_scheduled",
                       interview_start=start, interview_end=start + timedelta(minutes=30),
                       public_id="app_csv1")
    ApplicationFactory(cohort=cohort, status="new")
    ApplicationFactory(cohort=cohort, status="declined")
    html = admin_client.get(list_url(cohort, "?status=first_round_scheduled")).content.decode()
    assert 'href="/cohorts/northwind-2026/applications/?status=first_round_scheduled&amp;format=csv"' in html
    response = admin_client.get(list_url(cohort, "?status=first_round_scheduled&format=csv"))
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="northwind-2026-applications-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["public_id"] == "app_csv1" and row["applicant_name"] == "'=HYPERLINK(1)"
    assert row["status"] == "First round scheduled" and row["stage"] == "First round"
    assert row["pipeline"] == "in 3 days"
    assert row["interview_start_utc"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert row["interview_start_local"] == start.astimezone(zoneinfo.ZoneInfo("Europe/Paris")).isoformat()
    assert row["local_time_zone"] == "Europe/Paris"
    # Without a status filter: every row the tab shows (declined hidden by default).
    everything = admin_client.get(list_url(cohort, "?format=csv"))
    assert len(b"".join(everything.streaming_content).decode().strip().splitlines()) == 1 + 2


def test_export_is_404_for_an_outsider(client, outsider, cohort):
    client.force_login(outsider)
    assert client.get(list_url(cohort, "?format=csv")).status_code == 404


def test_search_finds_a_public_id_and_an_alternate_email(admin_client, cohort):
    a = ApplicationFactory(cohort=cohort, public_id="app_0123abcd4567")
    b = ApplicationFactory(cohort=cohort)
    b.alternate_emails.create(email="grace.personal@gmail.com")
    ApplicationFactory(cohort=cohort)
    assert row_ids(admin_client.get(list_url(cohort, "?q=app_0123abcd4567"))) == [a.pk]
    assert row_ids(admin_client.get(list_url(cohort, "?q=APP_0123ABCD4567"))) == [a.pk]
    assert row_ids(admin_client.get(list_url(cohort, "?q=grace.personal"))) == [b.pk]
