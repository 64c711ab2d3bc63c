"""Issue 13: the cohort's interview calendar (week, agenda, round filter) and its ICS feed."""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.urls import reverse
from icalendar import Calendar

from applications.models import UserSettings
from scheduling.models import Booking

from .calcom_helpers import post, sample
from .factories import ApplicationFactory, MembershipFactory, UserFactory

UTC = timezone.utc
OLD_UID, NEW_UID = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya"
# The samples' interviews are in June 2026; the feed's window is around "now".
NOW = datetime(2026, 6, 8, 9, 0, tzinfo=UTC)


def calendar_url(cohort, **params):
    url = reverse("scheduling:interviews", args=[cohort.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def feed_url(cohort, token=None):
    return reverse("scheduling:interview_feed", args=[cohort.slug, token or cohort.calendar_token])


def events(response):
    assert response["Content-Type"].startswith("text/calendar")
    return {str(e["uid"]): e for e in Calendar.from_ical(response.content).walk("VEVENT")}


@pytest.fixture
def traveller():
    with time_machine.travel(NOW, tick=False) as t:
        yield t


def test_the_week_lists_interviews_in_the_viewers_zone_with_state_and_link(client, admin_client, cohort, ada,
                                                                          org_admin, traveller):
    UserSettings.objects.create(user=org_admin, time_zone="America/New_York")
    post(client, cohort, sample("booking_created"))
    html = admin_client.get(calendar_url(cohort)).content.decode()
    assert "Tue 9 Jun" in html and "10:00–10:30" in html  # 14:00 UTC is 10:00 in New York
    assert 'class="interview interview-scheduled"' in html  # the legend alone shows every state
    assert reverse("applications:detail", args=[cohort.slug, ada.pk]) in html
    assert "1 interview" in html and "America/New_York" in html


def test_a_reschedule_shows_only_the_new_time_and_a_cancel_shows_cancelled(client, admin_client, cohort, ada,
                                                                           traveller):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, sample("booking_rescheduled"))
    html = admin_client.get(calendar_url(cohort)).content.decode()
    assert "Thu 11 Jun" in html and "15:00–15:30" in html and "14:00" not in html
    post(client, cohort, sample("booking_cancelled"))
    html = admin_client.get(calendar_url(cohort)).content.decode()
    assert 'class="interview interview-cancelled"' in html


def test_the_agenda_lists_four_weeks_of_days_that_have_interviews(client, admin_client, cohort, ada, traveller):
    post(client, cohort, sample("booking_created"))
    html = admin_client.get(calendar_url(cohort, view="agenda")).content.decode()
    assert "Tue 9 Jun" in html and "Wed 10 Jun" not in html  # only days with interviews
    assert "8 Jun 2026 – 5 Jul 2026" in html


def test_weeks_page_back_and_forth_without_javascript(client, admin_client, cohort, ada, traveller):
    post(client, cohort, sample("booking_created"))
    html = admin_client.get(calendar_url(cohort, week="2026-06-17")).content.decode()
    assert "15 Jun 2026 – 21 Jun 2026" in html and "No interviews" in html
    # The links themselves ("This week" also points at 8 June, today under the time machine).
    assert 'week=2026-06-08" rel="prev"' in html and 'week=2026-06-22" rel="next"' in html
    assert admin_client.get(calendar_url(cohort, week="not-a-date")).status_code == 200


def test_the_round_filter_keeps_one_round(client, admin_client, cohort, ada, traveller):
    post(client, cohort, sample("booking_created"))
    Booking.objects.update(round=2)
    assert "Ada Lovelace" in admin_client.get(calendar_url(cohort, round=2)).content.decode()
    assert "Ada Lovelace" not in admin_client.get(calendar_url(cohort, round=1)).content.decode()


def test_pending_and_held_interviews_have_their_own_dots(admin_client, cohort, traveller):
    application = ApplicationFactory(cohort=cohort, applicant_name="Pending Person")
    Booking.objects.create(cohort=cohort, application=application, uid="p1", state="pending",
                           start=NOW + timedelta(days=1), end=NOW + timedelta(days=1, minutes=30))
    held = ApplicationFactory(cohort=cohort, applicant_name="Held Person")
    Booking.objects.create(cohort=cohort, application=held, uid="h1", state="accepted",
                           start=NOW - timedelta(hours=3), end=NOW - timedelta(hours=2))
    html = admin_client.get(calendar_url(cohort)).content.decode()
    assert "interview-pending" in html and "interview-held" in html


def test_one_seat_rescheduled_leaves_the_other_seats_of_the_slot_on_the_calendar(admin_client, cohort, traveller):
    start = NOW + timedelta(days=1)
    for name, key in (("Seat One", "one@example.org"), ("Seat Two", "two@example.org")):
        Booking.objects.create(cohort=cohort, application=ApplicationFactory(cohort=cohort, applicant_name=name),
                               uid="slot1", attendee_key=key, state="accepted", start=start,
                               end=start + timedelta(minutes=30))
    one = Booking.objects.get(attendee_key="one@example.org")
    Booking.objects.create(cohort=cohort, application=one.application, uid="slot2", attendee_key=one.attendee_key,
                           reschedule_uid="slot1", state="accepted", start=start + timedelta(hours=2),
                           end=start + timedelta(hours=2, minutes=30))
    html = admin_client.get(calendar_url(cohort)).content.decode()
    assert html.count("Seat One") == 1 and "Seat Two" in html


def test_only_org_admins_see_the_feed_address(client, admin_client, cohort, traveller):
    assert feed_url(cohort) in admin_client.get(calendar_url(cohort)).content.decode()
    member = UserFactory(username="member")
    MembershipFactory(user=member, organization=cohort.organization, role="member")
    client.force_login(member)
    html = client.get(calendar_url(cohort)).content.decode()
    assert cohort.calendar_token not in html
    assert client.post(reverse("scheduling:interview_feed_rotate", args=[cohort.slug])).status_code == 403


def test_an_outsider_gets_404_from_the_calendar_and_its_rotate(client, outsider, cohort):
    client.force_login(outsider)
    assert client.get(calendar_url(cohort)).status_code == 404
    assert client.post(reverse("scheduling:interview_feed_rotate", args=[cohort.slug])).status_code == 404


# --- the ICS feed -----------------------------------------------------------------------------


def test_the_feed_keeps_the_uid_across_a_reschedule_and_raises_the_sequence(client, cohort, ada, traveller):
    post(client, cohort, sample("booking_created"))
    first = events(client.get(feed_url(cohort)))
    assert list(first) == [f"{OLD_UID}@Cal.com"]
    event = first[f"{OLD_UID}@Cal.com"]
    assert event["summary"] == "Interview: Ada Lovelace"
    assert event.decoded("dtstart") == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert str(event["status"]) == "CONFIRMED" and int(event["sequence"]) == 0
    post(client, cohort, sample("booking_rescheduled"))
    second = events(client.get(feed_url(cohort)))
    assert list(second) == [f"{OLD_UID}@Cal.com"]  # the same event, moved
    moved = second[f"{OLD_UID}@Cal.com"]
    assert moved.decoded("dtstart") == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    assert int(moved["sequence"]) > int(event["sequence"])
    post(client, cohort, sample("booking_cancelled"))
    cancelled = events(client.get(feed_url(cohort)))[f"{OLD_UID}@Cal.com"]
    assert str(cancelled["status"]) == "CANCELLED" and int(cancelled["sequence"]) > int(moved["sequence"])


def test_the_feed_carries_the_meeting_link_and_the_application(client, cohort, ada, traveller):
    post(client, cohort, sample("booking_created"))
    booking = Booking.objects.get()
    event = events(client.get(feed_url(cohort)))[f"{OLD_UID}@Cal.com"]
    assert str(event["url"]) == booking.meeting_url and booking.meeting_url
    description = str(event["description"])
    assert booking.meeting_url in description
    assert reverse("applications:detail", args=[cohort.slug, ada.pk]) in description


def test_the_feed_names_the_organizer_when_known(cohort, traveller):
    from scheduling.calendar import feed

    application = ApplicationFactory(cohort=cohort, applicant_name="Org Test")
    booking = Booking.objects.create(cohort=cohort, application=application, uid="o1", state="accepted",
                                     start=NOW + timedelta(days=2))
    booking.organizer_email, booking.organizer_name = "host@example.org", "Hedy Host"
    from scheduling import calendar

    event = calendar._event(cohort, booking, {}, NOW)
    assert str(event["organizer"]) == "mailto:host@example.org" and event["organizer"].params["cn"] == "Hedy Host"
    assert b"o1@cohortos" in feed(cohort)


def test_the_feed_window_is_a_month_back_and_half_a_year_ahead(cohort, client, traveller):
    application = ApplicationFactory(cohort=cohort)
    for uid, days in [("old", -31), ("recent", -29), ("soon", 179), ("far", 181)]:
        Booking.objects.create(cohort=cohort, application=application, uid=uid, state="accepted",
                               start=NOW + timedelta(days=days))
    assert sorted(events(client.get(feed_url(cohort)))) == ["recent@cohortos", "soon@cohortos"]


def test_a_wrong_or_rotated_token_answers_404(client, admin_client, cohort, ada, traveller):
    old = feed_url(cohort)
    assert client.get(old).status_code == 200
    assert client.get(feed_url(cohort, "wrong-token")).status_code == 404
    response = admin_client.post(reverse("scheduling:interview_feed_rotate", args=[cohort.slug]))
    assert response.status_code == 302
    cohort.refresh_from_db()
    assert client.get(old).status_code == 404
    assert client.get(feed_url(cohort)).status_code == 200


def test_another_cohorts_token_does_not_open_this_feed(client, cohort, outsider):
    from applications.models import Cohort

    theirs = Cohort.objects.for_user(outsider).get()
    assert client.get(feed_url(cohort, theirs.calendar_token)).status_code == 404
