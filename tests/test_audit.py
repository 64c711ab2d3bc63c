"""Issue 13: one timeline per application, history nobody rewrites, PROTECT and archived cohorts."""

import zoneinfo
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from applications import timeline
from applications.models import Application, Cohort, StatusChange, UserSettings
from applications.timeline import TimelineEntry
from orphans.models import OrphanedInterview
from orphans.services import dismiss_orphan, restore_orphan
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, UserFactory
from .demo import seed_quick_start_demo

OLD_UID, NEW_UID = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya"


def detail(client, application, **params):
    url = reverse("applications:detail", args=[application.cohort.slug, application.pk])
    return client.get(url, params).content.decode()


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


# --- the timeline ------------------------------------------------------------------------------


def test_create_reschedule_cancel_tell_the_whole_story_in_the_viewers_zone(client, admin_client, cohort, ada,
                                                                         org_admin):
    UserSettings.objects.create(user=org_admin, time_zone="Asia/Tokyo")
    post(client, cohort, sample("booking_created"))
    post(client, cohort, sample("booking_rescheduled"))
    post(client, cohort, sample("booking_cancelled"))
    html = detail(admin_client, ada)
    # 14:00 UTC on 9 June is 23:00 in Tokyo; the reschedule moved it to 15:00 UTC on 11 June (00:00 JST, 12th).
    assert "Interview booked for Tue 9 Jun 2026, 23:00 JST" in html
    assert "Interview rescheduled from Tue 9 Jun 2026, 23:00 JST to Fri 12 Jun 2026, 00:00 JST" in html
    assert "Interview of Fri 12 Jun 2026, 00:00 JST cancelled" in html
    assert "I have accepted another offer" in html
    assert "Status: Waiting for first round → First round scheduled." in html
    assert "Status: First round scheduled → Waiting for first round." in html
    kinds = [e.data["trigger"] for e in TimelineEntry.objects.filter(application=ada).order_by("at")]
    assert kinds == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
    # Each booking line links to the delivery that brought it.
    delivery = WebhookDelivery.objects.get(trigger_event="BOOKING_CANCELLED")
    assert f'href="#delivery-{delivery.pk}">webhook delivery #{delivery.pk}</a>' in html


def test_the_cancel_says_who_cancelled_when_the_provider_does(cohort, ada):
    entry = timeline.record(ada, "booking", trigger="BOOKING_CANCELLED", uid="u1",
                            start="2026-06-11T15:00:00+00:00", by="ada.lovelace@example.org", reason="Withdrawn")
    text = timeline.sentence(entry, zoneinfo.ZoneInfo("Europe/London"))
    assert text == "Interview of Thu 11 Jun 2026, 16:00 BST cancelled by ada.lovelace@example.org: “Withdrawn”"


@pytest.mark.parametrize("trigger, expected", [
    ("BOOKING_REQUESTED", "Interview requested for Tue 9 Jun 2026, 14:00 UTC by Ada, waiting for the host's "
                          "confirmation (booking u1)."),
    ("BOOKING_REJECTED", "The host declined the request for Tue 9 Jun 2026, 14:00 UTC by Ada: “Full”"),
    ("MEETING_ENDED", "Interview of Tue 9 Jun 2026, 14:00 UTC held (booking u1)."),
    ("BOOKING_NO_SHOW_UPDATED", "No-show recorded for the interview of Tue 9 Jun 2026, 14:00 UTC by Ada."),
])
def test_every_booking_event_kind_reads_as_a_sentence(ada, trigger, expected):
    entry = timeline.record(ada, "booking", trigger=trigger, uid="u1", start="2026-06-09T14:00:00+00:00",
                            by="Ada", reason="Full" if trigger == "BOOKING_REJECTED" else "")
    assert timeline.sentence(entry, zoneinfo.ZoneInfo("UTC")) == expected


def test_a_request_for_a_new_time_reads_as_such(ada):
    entry = timeline.record(ada, "booking", trigger="BOOKING_CANCELLED", uid="u1", request_reschedule=True,
                            start="2026-06-09T14:00:00+00:00", reason="Sick")
    assert timeline.sentence(entry, zoneinfo.ZoneInfo("UTC")) == (
        "The host asked for a new time instead of Tue 9 Jun 2026, 14:00 UTC: “Sick”")


def test_another_source_plugs_in_with_a_renderer_and_record(admin_client, ada):
    @timeline.renderer("test_invitation_sent")
    def _(entry, tz):
        return f"Invited to book round {entry.data['round']}."

    timeline.record(ada, "test_invitation_sent", round=1)
    timeline.record(ada, "kind_nobody_registered")
    html = detail(admin_client, ada)
    assert "Invited to book round 1." in html and "Kind nobody registered." in html


def test_the_timeline_pages_through_thousands_of_entries_in_a_fixed_number_of_queries(
        admin_client, cohort, ada, django_assert_max_num_queries):
    now = timezone.now()
    TimelineEntry.objects.bulk_create(
        TimelineEntry(application=ada, kind="booking", at=now - timedelta(minutes=n),
                      data={"trigger": "BOOKING_CREATED", "uid": f"u{n}", "start": now.isoformat()})
        for n in range(1500))
    StatusChange.objects.bulk_create(
        StatusChange(application=ada, old_status="new", new_status="waiting_first_round",
                     created_at=now - timedelta(minutes=n, seconds=30)) for n in range(1500))
    # The page's fixed queries (tests/test_applications_views.py) plus one more source of rows.
    with django_assert_max_num_queries(20):
        html = detail(admin_client, ada, page=30)
    assert "Page 30 of 60" in html and "(booking u725)" in html and "(booking u750)" not in html
    assert html.count('<li class="timeline-') == timeline.PAGE_SIZE


# --- admin edits and the history --------------------------------------------------------------


def test_an_admin_edit_appears_on_the_timeline_with_old_and_new_values(client, superuser, ada):
    client.force_login(superuser)
    url = reverse("admin:applications_application_change", args=[ada.pk])
    form = {"applicant_name": "Ada King", "contact_email": "ada@king.example", "public_id": ada.public_id,
            "alternate_emails-TOTAL_FORMS": "0", "alternate_emails-INITIAL_FORMS": "0",
            "status_changes-TOTAL_FORMS": "0", "status_changes-INITIAL_FORMS": "0"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = TimelineEntry.objects.get(application=ada, kind="edit")
    assert entry.user == superuser and entry.data["where"] == "the Django admin"
    assert ["Applicant name", "Ada Lovelace", "Ada King"] in entry.data["changes"]
    assert ["Contact email", "ada.lovelace@example.org", "ada@king.example"] in entry.data["changes"]
    record = ada.history.latest()
    assert (record.history_user, record.applicant_name, record.prev_record.applicant_name) == (
        superuser, "Ada King", "Ada Lovelace")


def test_edits_made_by_a_script_are_recorded_too(admin_client, ada):
    ada.applicant_name = "Ada Byron"
    ada.save()
    html = detail(admin_client, ada)
    assert "Edited in a command or script: Applicant name: “Ada Lovelace” → “Ada Byron”." in html
    assert ada.history.count() == 2


def test_a_late_copy_that_changes_nothing_writes_no_history_row_and_no_timeline_line(client, cohort, ada):
    """The merge saves a stored booking only when the event changed one of its columns, and a
    copy that told us nothing new is not a line of the timeline of its own."""
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    booking = Booking.objects.get()
    rows, lines = booking.history.count(), TimelineEntry.objects.filter(application=ada).count()
    # The same booking again, sent a minute earlier than the copy already applied: stale.
    late = sample("booking_created", createdAt="2026-06-02T16:20:07.000Z")
    assert post(client, cohort, late).json()["outcome"] == "applied"
    assert booking.history.count() == rows
    assert TimelineEntry.objects.filter(application=ada).count() == lines


def test_the_derived_fields_and_the_cohort_are_read_only_in_the_admin(client, superuser, ada):
    client.force_login(superuser)
    html = client.get(reverse("admin:applications_application_change", args=[ada.pk])).content.decode()
    assert 'name="applicant_name"' in html
    for field in ("cohort", "status", "interview_start", "interview_booking_uid"):
        assert f'name="{field}"' not in html


def test_status_changes_and_history_are_read_only_even_for_superusers(client, superuser, ada, org_admin):
    change = ada.move_to("first_round_scheduled", user=org_admin)
    client.force_login(superuser)
    url = reverse("admin:applications_statuschange_change", args=[change.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="note"' not in page.content.decode()
    assert client.post(url, {"note": "rewritten", "old_status": "new", "new_status": "accepted"}).status_code == 403
    assert client.post(reverse("admin:applications_statuschange_delete", args=[change.pk]),
                       {"post": "yes"}).status_code == 403
    history = Application.history.model.objects.filter(id=ada.pk).first()
    history_url = reverse("admin:applications_historicalapplication_change", args=[history.pk])
    assert client.post(history_url, {}).status_code == 403
    assert client.post(reverse("admin:applications_historicalapplication_delete", args=[history.pk]),
                       {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:applications_application_history", args=[ada.pk])).status_code == 200
    change.refresh_from_db()
    assert change.note == "" and StatusChange.objects.count() == 1


def test_a_management_command_change_is_in_the_history(db):
    seed_quick_start_demo()
    demo = Cohort.objects.get()
    assert Application.history.filter(cohort_id=demo.pk, history_type="+").exists()


def test_restoring_a_dismissed_orphan_keeps_who_dismissed_it_and_why_in_its_history(cohort, org_admin):
    orphan = OrphanedInterview.objects.create(cohort=cohort, booking_uid="u1", email="x@example.org")
    dismiss_orphan(orphan, user=org_admin, reason="spam")
    restore_orphan(orphan, user=org_admin)
    rows = list(orphan.history.order_by("history_date", "history_id"))
    assert [(r.resolution, r.dismiss_reason, r.history_change_reason) for r in rows] == [
        ("", "", None), ("dismissed", "spam", "Dismissed: Spam"), ("", "", "Restored")]
    assert rows[1].resolved_by_id == org_admin.pk and rows[2].history_user == org_admin


# --- nothing is deleted -----------------------------------------------------------------------


def test_a_cohort_with_applications_and_an_application_with_history_cannot_be_deleted(client, cohort, ada,
                                                                                     org_admin):
    post(client, cohort, sample("booking_created"))
    with pytest.raises(ProtectedError):
        cohort.delete()
    with pytest.raises(ProtectedError):
        Application.objects.get(pk=ada.pk).delete()
    with pytest.raises(ProtectedError):
        WebhookDelivery.objects.first().cohort.delete()
    assert Application.objects.filter(pk=ada.pk).exists() and WebhookDelivery.objects.count() == 1


def test_the_admin_offers_no_delete_for_cohorts_deliveries_bookings_and_orphans(client, superuser, cohort, ada):
    post(client, cohort, sample("booking_created"))
    client.force_login(superuser)
    for name, pk in [("applications_cohort", cohort.pk), ("scheduling_webhookdelivery", WebhookDelivery.objects.get().pk),
                     ("scheduling_booking", Booking.objects.get().pk), ("applications_application", ada.pk)]:
        response = client.post(reverse(f"admin:{name}_delete", args=[pk]), {"post": "yes"})
        assert response.status_code == 403, name
    assert Cohort.objects.filter(pk=cohort.pk).exists()


def test_an_application_nothing_happened_to_can_be_deleted_in_the_admin(client, superuser, cohort):
    fresh = ApplicationFactory(cohort=cohort)
    client.force_login(superuser)
    response = client.post(reverse("admin:applications_application_delete", args=[fresh.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Application.objects.filter(pk=fresh.pk).exists()


# --- archived cohorts ------------------------------------------------------------------------


def test_an_archived_cohort_answers_webhooks_410_and_still_stores_them(client, cohort, ada, org_admin):
    cohort.archive(user=org_admin)
    response = post(client, cohort, sample("booking_created"))
    assert response.status_code == 410
    assert "archived" in response.json()["error"] and "stored but not applied" in response.json()["error"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "ignored" and delivery.trigger_event == "BOOKING_CREATED"
    assert bytes(delivery.body).startswith(b"{")
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round" and not Booking.objects.exists()
    again = post(client, cohort, sample("booking_created"))
    assert again.status_code == 410 and again.json()["delivery"] == delivery.pk
    assert WebhookDelivery.objects.count() == 1  # the same bytes are kept once, and counted
    delivery.refresh_from_db()
    assert delivery.redeliveries == 1
    assert cohort.history.latest().history_user == org_admin


def test_an_archived_cohort_is_read_only_and_leaves_the_switcher(admin_client, cohort, ada, org_admin):
    cohort.archive(user=org_admin)
    home = admin_client.get(reverse("home")).content.decode()
    assert cohort.name not in home and "1 archived cohort" in home
    assert cohort.name in admin_client.get(reverse("home"), {"archived": "1"}).content.decode()
    page = detail(admin_client, ada)
    assert "is archived: nothing in it can change" in page and 'name="status"' not in page
    url = reverse("applications:change_status", args=[cohort.slug, ada.pk])
    response = admin_client.post(url, {"status": "declined", "current": "waiting_first_round", "confirm": "1"})
    assert response.status_code == 422 and "archived" in response.content.decode()
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round"


def test_the_admins_bulk_status_action_cannot_move_an_archived_cohorts_applications(client, superuser, cohort,
                                                                                   ada, org_admin):
    """The rule lives in move_to, so every writer of status meets it, the admin's actions included."""
    cohort.archive(user=org_admin)
    client.force_login(superuser)
    changelist = reverse("admin:applications_application_changelist")
    response = client.post(changelist, {"action": "move_to_declined", "_selected_action": [ada.pk]}, follow=True)
    assert "is archived: its applications can no longer change" in response.content.decode()
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round"


def test_archiving_in_the_admin_makes_the_cohort_read_only_there(client, superuser, cohort):
    client.force_login(superuser)
    changelist = reverse("admin:applications_cohort_changelist")
    response = client.post(changelist, {"action": "archive", "_selected_action": [cohort.pk]})
    assert response.status_code == 302
    cohort.refresh_from_db()
    assert cohort.is_archived
    page = client.get(reverse("admin:applications_cohort_change", args=[cohort.pk])).content.decode()
    assert 'name="name"' not in page
    client.post(changelist, {"action": "unarchive", "_selected_action": [cohort.pk]})
    cohort.refresh_from_db()
    assert not cohort.is_archived


# --- moving a booking in the admin -------------------------------------------------------------


def test_moving_a_booking_in_the_admin_resyncs_both_applications(client, superuser, cohort, ada):
    post(client, cohort, sample("booking_created"))
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round")
    booking = Booking.objects.get()
    client.force_login(superuser)
    response = client.post(reverse("admin:scheduling_booking_change", args=[booking.pk]),
                           {"application": grace.pk})
    assert response.status_code == 302
    ada.refresh_from_db()
    grace.refresh_from_db()
    assert (ada.status, ada.interview_booking_uid) == ("waiting_first_round", "")
    assert (grace.status, grace.interview_booking_uid) == ("first_round_scheduled", OLD_UID)
    assert WebhookDelivery.objects.get().application == grace
    assert TimelineEntry.objects.get(application=ada, kind="booking_moved").data["direction"] == "out"
    assert TimelineEntry.objects.get(application=grace, kind="booking_moved").user == superuser
    assert booking.history.latest().history_user == superuser


@pytest.mark.postgres  # SQLite takes no row locks: its SQL has no FOR UPDATE
def test_moving_a_booking_locks_the_applications_before_the_booking_as_the_webhook_does(cohort, ada, superuser):
    """Regression: the move locked the booking first, the webhook its application first: a move
    and a webhook about the same booking could deadlock (PostgreSQL then aborts one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scheduling.reassign import move_booking

    post(Client(), cohort, sample("booking_created"))
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round")
    with CaptureQueriesContext(connection) as queries:
        move_booking(Booking.objects.get(), grace, user=superuser)
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]
             and ('FROM "applications_application"' in q["sql"] or 'FROM "scheduling_booking"' in q["sql"])]
    assert 'FROM "applications_application"' in locks[0] and 'FROM "scheduling_booking"' in locks[1], locks[:2]
    assert Booking.objects.get().application == grace


def test_a_booking_that_changed_hands_meanwhile_is_not_moved(cohort, ada, superuser, monkeypatch):
    from scheduling import reassign

    post(Client(), cohort, sample("booking_created"))
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round")
    other = ApplicationFactory(cohort=cohort, applicant_name="Hedy Lamarr", status="waiting_first_round")
    booking = Booking.objects.get()
    real_lock = reassign.Application.objects.select_for_update

    def lock_then_a_webhook_moves_it(*args, **kwargs):
        # Between the unlocked read of the owner and the booking's lock, the booking changes hands.
        Booking.objects.filter(pk=booking.pk).update(application=other)
        return real_lock(*args, **kwargs)

    monkeypatch.setattr(reassign.Application.objects, "select_for_update", lock_then_a_webhook_moves_it)
    with pytest.raises(reassign.BookingMoveRefused, match="given to another application meanwhile"):
        reassign.move_booking(booking, grace, user=superuser)
    # Nothing of the move was written (the stand-in webhook's UPDATE ran inside the move's
    # transaction, so it rolled back with it): the booking is Ada's, Grace is still waiting.
    assert Booking.objects.get().application == ada
    grace.refresh_from_db()
    assert grace.status == "waiting_first_round" and grace.interview_booking_uid == ""


def test_a_booking_cannot_be_moved_onto_a_closed_application(client, superuser, cohort, ada):
    post(client, cohort, sample("booking_created"))
    done = ApplicationFactory(cohort=cohort, status="declined")
    booking = Booking.objects.get()
    client.force_login(superuser)
    response = client.post(reverse("admin:scheduling_booking_change", args=[booking.pk]),
                           {"application": done.pk}, follow=True)
    assert "Not moved" in response.content.decode()
    assert Booking.objects.get().application == ada


def test_reassigning_a_matched_orphan_in_the_admin_moves_its_booking(client, superuser, cohort, ada, org_admin):
    from orphans.services import match_orphan

    post(client, cohort, with_email(sample("booking_created", metadata={}), "ada.personal@gmail.com"))
    orphan = OrphanedInterview.objects.get()
    match_orphan(orphan, ada, user=org_admin)
    grace = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", status="waiting_first_round")
    client.force_login(superuser)
    url = reverse("admin:orphans_orphanedinterview_change", args=[orphan.pk])
    data = {"cohort": cohort.pk, "booking_uid": orphan.booking_uid, "email": orphan.email, "reason": orphan.reason,
            "application": grace.pk, "name": "", "ical_uid": orphan.ical_uid, "time_zone": "", "meeting_url": "",
            "event_type": "", "application_ref": "", "delivery": orphan.delivery_id or "",
            "created_at_0": "2026-06-02", "created_at_1": "16:21:07"}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    orphan.refresh_from_db()
    ada.refresh_from_db()
    grace.refresh_from_db()
    assert orphan.application == grace and orphan.resolution == "matched"
    assert Booking.objects.get().application == grace
    assert ada.interview_booking_uid == "" and grace.interview_booking_uid == OLD_UID
    assert not ada.alternate_emails.exists()


def test_the_demo_reset_purges_its_cohort_and_says_what_it_deleted(db, capsys):
    from io import StringIO

    seed_quick_start_demo(stdout=StringIO())
    first = Cohort.objects.get()
    out = StringIO()
    seed_quick_start_demo("--reset", stdout=out)
    assert "Deleted the demo cohort:" in out.getvalue() and "applications" in out.getvalue()
    assert not Cohort.objects.filter(pk=first.pk).exists() and Cohort.objects.count() == 1


def test_invitations_and_schedule_changes_join_the_timeline(admin_client, cohort, ada, org_admin):
    from scheduling.models import Invitation, ScheduleChange

    ScheduleChange.objects.create(application=ada, action="offline_scheduled", user=org_admin,
                                  detail="Phone call on Tue 9 Jun")
    Invitation.objects.create(application=ada, round=1, entry="initial", to_email=ada.contact_email,
                              booking_link="https://cal.com/x", subject="Book", body="Book", state="sent",
                              sent_by=org_admin)
    html = detail(admin_client, ada)
    assert "Scheduled offline: Phone call on Tue 9 Jun." in html
    assert "Invitation to book round 1 sent to ada.lovelace@example.org." in html


def test_a_no_show_reads_with_what_the_provider_said(ada):
    entry = timeline.record(ada, "booking", trigger="BOOKING_NO_SHOW_UPDATED", uid="u1",
                            start="2026-06-09T14:00:00+00:00", detail="marked a no-show.")
    assert timeline.sentence(entry, zoneinfo.ZoneInfo("UTC")) == (
        "Interview of Tue 9 Jun 2026, 14:00 UTC: marked a no-show.")
