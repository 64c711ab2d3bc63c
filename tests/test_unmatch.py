"""Issue 13: matching that cannot hurt: confirm before replacing, unmatch, suggestions from one orphan."""

from datetime import datetime, timezone

import pytest
from django.urls import reverse

from applications.timeline import TimelineEntry
from orphans.models import OrphanedInterview
from orphans.services import OrphanConflict, match_orphan, unmatch_orphan
from orphans.suggestions import ONE_CHARACTER_OFF, SAME_DOMAIN, SAME_NAME, SAME_SURNAME, suggest_for
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, MembershipFactory, UserFactory

UTC = timezone.utc
OLD_UID = "k7Qm3XyZp2RvT9wLbN4sHd"
STRAY_UID = "StrayBookingUid0000001"
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def scheduled_ada(client, cohort, ada):
    """Ada with her first-round interview booked through her link (9 June, 14:00 UTC)."""
    assert post(client, cohort, sample("booking_created")).json()["outcome"] == "applied"
    ada.refresh_from_db()
    assert ada.interview_booking_uid == OLD_UID
    return ada


@pytest.fixture
def stray(client, cohort):
    """Someone else's booking for 20 June, 09:00 UTC, from an unknown address: orphaned."""
    body = with_email(sample("booking_created", uid=STRAY_UID, iCalUID=f"{STRAY_UID}@Cal.com", metadata={},
                             startTime="2026-06-20T09:00:00Z", endTime="2026-06-20T09:30:00Z"),
                      "someone.else@gmail.com", "Someone Else")
    assert post(client, cohort, body).json()["outcome"] == "orphaned"
    return OrphanedInterview.objects.get(booking_uid=STRAY_UID)


def match_url(cohort, orphan):
    return reverse("orphans:match", args=[cohort.slug, orphan.pk])


# --- matching onto a live interview asks first ------------------------------------------------


def test_matching_onto_a_live_interview_asks_first_showing_both(admin_client, cohort, scheduled_ada, stray):
    response = admin_client.post(match_url(cohort, stray), {"application": scheduled_ada.pk, "remember_email": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "already has an interview" in html
    assert OLD_UID in html and STRAY_UID in html
    assert 'name="replace" value="1"' in html
    stray.refresh_from_db()
    assert not stray.is_resolved and Booking.objects.get(uid=STRAY_UID).application is None


def test_confirming_replaces_it_and_the_replaced_booking_stays_on_the_timeline(admin_client, cohort, scheduled_ada,
                                                                             stray, org_admin):
    response = admin_client.post(match_url(cohort, stray), {"application": scheduled_ada.pk, "replace": "1"})
    assert response.status_code == 302
    ada = scheduled_ada
    ada.refresh_from_db()
    assert ada.interview_booking_uid == STRAY_UID
    entry = TimelineEntry.objects.get(application=ada, kind="matched")
    assert (entry.data["replaced_uid"], entry.user) == (OLD_UID, org_admin)
    html = admin_client.get(reverse("applications:detail", args=[cohort.slug, ada.pk])).content.decode()
    assert f"It replaced the interview of Tue 9 Jun 2026, 14:00 UTC (booking {OLD_UID})" in html
    assert Booking.objects.get(uid=OLD_UID).state == "accepted"  # still booked with Cal.com


def test_the_confirmation_works_under_htmx_too(admin_client, cohort, scheduled_ada, stray):
    response = admin_client.post(match_url(cohort, stray), {"application": scheduled_ada.pk}, **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="orphan-list"') and "Match and replace" in html


def test_matching_an_application_without_a_live_interview_does_not_ask(admin_client, cohort, ada, stray):
    response = admin_client.post(match_url(cohort, stray), {"application": ada.pk})
    assert response.status_code == 302
    ada.refresh_from_db()
    assert ada.interview_booking_uid == STRAY_UID


# --- unmatch ------------------------------------------------------------------------------------


def test_unmatch_restores_the_earlier_interview_and_returns_the_booking_to_the_queue(
        cohort, scheduled_ada, stray, org_admin, mailoutbox):
    match_orphan(stray, scheduled_ada, user=org_admin)
    sent_before = len(mailoutbox)
    alert_state = OrphanedInterview.objects.get(pk=stray.pk).alert_state
    sentence = unmatch_orphan(stray, user=org_admin)
    ada = scheduled_ada
    ada.refresh_from_db()
    assert ada.interview_booking_uid == OLD_UID and ada.status == "first_round_scheduled"
    assert ada.interview_start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert "Interview" in sentence or "interview" in sentence
    stray.refresh_from_db()
    assert (stray.resolved_at, stray.resolution, stray.application) == (None, "", None)
    assert stray.alert_state == alert_state and len(mailoutbox) == sent_before  # not alerted again
    assert Booking.objects.get(uid=STRAY_UID).application is None
    assert WebhookDelivery.objects.get(booking_uid=STRAY_UID).application is None
    assert not ada.alternate_emails.filter(email="someone.else@gmail.com").exists()
    entry = TimelineEntry.objects.get(application=ada, kind="unmatched")
    assert entry.data["restored_uid"] == OLD_UID and entry.user == org_admin
    assert [r.history_change_reason for r in stray.history.order_by("history_date", "history_id")][-1].startswith(
        "Unmatched")


def test_unmatch_without_an_earlier_interview_returns_the_application_to_waiting(cohort, ada, stray, org_admin):
    match_orphan(stray, ada, user=org_admin)
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"
    unmatch_orphan(stray, user=org_admin)
    ada.refresh_from_db()
    assert (ada.status, ada.interview_booking_uid, ada.interview_start) == ("waiting_first_round", "", None)
    assert ada.status_changes.first().note == f"Unmatched by {org_admin}"


def test_an_email_the_application_had_before_the_match_is_kept(cohort, ada, stray, org_admin):
    ada.alternate_emails.create(email="someone.else@gmail.com")
    match_orphan(stray, ada, user=org_admin)
    unmatch_orphan(stray, user=org_admin)
    assert ada.alternate_emails.filter(email="someone.else@gmail.com").exists()


def test_unmatching_an_unmatched_orphan_changes_nothing(cohort, stray, org_admin):
    with pytest.raises(OrphanConflict, match="not matched"):
        unmatch_orphan(stray, user=org_admin)


def test_the_unmatch_button_on_the_application_page_goes_back_there(admin_client, cohort, scheduled_ada, stray,
                                                                   org_admin):
    match_orphan(stray, scheduled_ada, user=org_admin)
    page = reverse("applications:detail", args=[cohort.slug, scheduled_ada.pk])
    html = admin_client.get(page).content.decode()
    assert "Bookings matched by hand" in html and reverse("orphans:unmatch", args=[cohort.slug, stray.pk]) in html
    response = admin_client.post(reverse("orphans:unmatch", args=[cohort.slug, stray.pk]), {"next": page})
    assert response.status_code == 302 and response.url == page
    assert "back among the unresolved" in admin_client.get(page).content.decode()


def test_the_matched_tab_lists_matched_orphans_with_their_unmatch_button(admin_client, cohort, ada, stray,
                                                                        org_admin):
    match_orphan(stray, ada, user=org_admin)
    url = reverse("orphans:list", args=[cohort.slug]) + "?show=matched"
    html = admin_client.get(url).content.decode()
    assert "Matched (1)" in html and "Ada Lovelace" in html and "Unmatch" in html
    response = admin_client.post(reverse("orphans:unmatch", args=[cohort.slug, stray.pk]), **HX)
    assert response.status_code == 200 and "Unmatched someone.else@gmail.com" in response.content.decode()
    assert "orphanMatched" in response.headers["HX-Trigger"]


def test_a_member_cannot_unmatch(client, cohort, ada, stray, org_admin):
    match_orphan(stray, ada, user=org_admin)
    member = UserFactory(username="member")
    MembershipFactory(user=member, organization=cohort.organization, role="member")
    client.force_login(member)
    assert client.post(reverse("orphans:unmatch", args=[cohort.slug, stray.pk])).status_code == 403
    stray.refresh_from_db()
    assert stray.resolution == "matched"


def test_an_outsider_gets_404_from_unmatch(client, outsider, cohort, ada, stray, org_admin):
    match_orphan(stray, ada, user=org_admin)
    client.force_login(outsider)
    assert client.post(reverse("orphans:unmatch", args=[cohort.slug, stray.pk])).status_code == 404


# --- the orphan's times ----------------------------------------------------------------------------


def test_the_orphan_reads_in_the_viewers_zone_with_their_own_time_beside_it(admin_client, cohort, org_admin):
    from applications.models import UserSettings

    UserSettings.objects.create(user=org_admin, time_zone="Europe/Paris")
    OrphanedInterview.objects.create(cohort=cohort, booking_uid="u1", email="x@example.org",
                                     start=datetime(2026, 6, 9, 10, 0, tzinfo=UTC), time_zone="Asia/Tokyo",
                                     created_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    html = admin_client.get(reverse("orphans:list", args=[cohort.slug])).content.decode()
    assert "Tue 9 Jun, 12:00 CEST" in html and "(their time: 19:00 Asia/Tokyo)" in html
    assert "1 Jun, 10:00 CEST" in html


# --- suggestions from one orphan alone ------------------------------------------------------------


def test_suggestions_say_why_and_ignore_webmail_domains(cohort):
    orphan = OrphanedInterview.objects.create(cohort=cohort, booking_uid="u1", email="jane.doe@gmail.com",
                                              name="Jane Doe")
    same_name = ApplicationFactory(cohort=cohort, applicant_name="Jane Doe", contact_email="jd@work.example")
    surname = ApplicationFactory(cohort=cohort, applicant_name="John Doe", contact_email="john@home.example")
    typo = ApplicationFactory(cohort=cohort, applicant_name="J. D.", contact_email="jane.do@gmail.com")
    ApplicationFactory(cohort=cohort, applicant_name="Gmail User", contact_email="other@gmail.com")
    found = suggest_for(orphan, limit=10)
    assert [(a, a.reasons) for a in found] == [
        (same_name, [SAME_NAME]), (typo, [ONE_CHARACTER_OFF]), (surname, [SAME_SURNAME])]


def test_suggestions_do_not_depend_on_the_other_orphans_listed(admin_client, cohort):
    mine = OrphanedInterview.objects.create(cohort=cohort, booking_uid="u1", email="c.babbage@analytical.example",
                                            name="Charles Babbage")
    colleague = ApplicationFactory(cohort=cohort, applicant_name="Ada Byron", contact_email="ada@analytical.example")
    unrelated = ApplicationFactory(cohort=cohort, applicant_name="Grace Hopper", contact_email="grace@navy.example",
                                   status="waiting_first_round")
    alone = [(a.pk, a.reasons) for a in suggest_for(mine)]
    OrphanedInterview.objects.create(cohort=cohort, booking_uid="u2", email="g.hopper@navy.example",
                                     name="Grace Hopper")
    assert [(a.pk, a.reasons) for a in suggest_for(mine)] == alone == [(colleague.pk, [SAME_DOMAIN])]
    html = admin_client.get(reverse("orphans:list", args=[cohort.slug])).content.decode()
    mine_block = html.split(f'id="orphan-{mine.pk}"')[1].split("</article>")[0]
    assert "Ada Byron" in mine_block and "same email domain" in mine_block
    assert "Grace Hopper" not in mine_block and unrelated.pk


def test_no_bonus_lifts_an_unrelated_waiting_applicant_into_the_list(cohort):
    orphan = OrphanedInterview.objects.create(cohort=cohort, booking_uid="u1", email="zed@gmail.com", name="Zed Q")
    ApplicationFactory(cohort=cohort, applicant_name="Waiting Person", status="waiting_first_round")
    assert suggest_for(orphan) == []
