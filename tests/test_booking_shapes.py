"""Cal.com's other real booking shapes: seats, the place, the link, the interviewer, no-shows.

Every body is built from the shared samples (tests/fixtures/calcom) and goes through
the real webhook view, signed over the bytes sent.
"""

from datetime import datetime, timezone

import pytest

from applications.models import StatusChange
from applications.pipeline import pipeline_state
from scheduling.models import Booking, WebhookDelivery
from scheduling.providers import calcom

from .calcom_helpers import encode, post, sample, with_email
from .factories import ApplicationFactory

UTC = timezone.utc
UID = "k7Qm3XyZp2RvT9wLbN4sHd"


def refreshed(application):
    application.refresh_from_db()
    return application


def seat(email, name, ref, *, trigger="BOOKING_CREATED", created="2026-06-02T16:21:07.482Z", **extra):
    """A seat of one seated slot (uid UID) booked by `email`, carrying application ref `ref`."""
    data = with_email(sample("booking_created", seatsPerTimeSlot=4, triggerEvent=trigger,
                             createdAt=created, **extra), email, name)
    data["payload"]["metadata"] = {"application_id": ref} if ref else {}
    return data


@pytest.fixture
def grace(cohort):
    return ApplicationFactory(cohort=cohort, applicant_name="Grace Chisholm",
                              contact_email="grace.chisholm@example.org", public_id="app_grace00001",
                              status="waiting_first_round", current_stage="first_round")


# --- seated event types ------------------------------------------------------------------


def test_two_applicants_in_one_seated_slot_keep_independent_bookings(client, cohort, ada, grace):
    assert post(client, cohort, seat("ada.lovelace@example.org", "Ada Lovelace", "app_7f3c2a91")).json()[
        "outcome"] == "applied"
    assert post(client, cohort, seat("grace.chisholm@example.org", "Grace Chisholm", "app_grace00001",
                                     created="2026-06-02T16:30:00.000Z")).json()["outcome"] == "applied"
    rows = Booking.objects.filter(uid=UID).order_by("attendee_key")
    assert [(b.attendee_key, b.application_id) for b in rows] == [
        ("ada.lovelace@example.org", ada.pk), ("grace.chisholm@example.org", grace.pk)]
    assert refreshed(ada).status == "first_round_scheduled"
    assert refreshed(grace).status == "first_round_scheduled"
    assert refreshed(ada).interview_booking_uid == refreshed(grace).interview_booking_uid == UID


def test_one_seat_cancelled_leaves_the_other_applicant_scheduled(client, cohort, ada, grace):
    post(client, cohort, seat("ada.lovelace@example.org", "Ada Lovelace", "app_7f3c2a91"))
    post(client, cohort, seat("grace.chisholm@example.org", "Grace Chisholm", "app_grace00001",
                              created="2026-06-02T16:30:00.000Z"))
    # The seat's cancel: the booking's (first booker's) responses, only the canceller listed (§4).
    cancel = sample("booking_cancelled", uid=UID, seatsPerTimeSlot=4, iCalUID=f"{UID}@Cal.com",
                    cancelledBy="grace.chisholm@example.org")
    cancel["payload"]["attendees"] = [{"name": "Grace Chisholm", "email": "grace.chisholm@example.org",
                                       "timeZone": "Europe/London"}]
    response = post(client, cohort, cancel)
    assert response.json()["outcome"] == "applied", response.content
    assert refreshed(grace).status == "waiting_first_round"
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == UID
    assert Booking.objects.get(uid=UID, attendee_key="ada.lovelace@example.org").state == "accepted"


def test_a_second_seat_with_a_forged_ref_cannot_take_the_first_applicants_interview(client, cohort, ada):
    post(client, cohort, seat("ada.lovelace@example.org", "Ada Lovelace", "app_7f3c2a91"))
    # Someone else books a seat in the same slot with Ada's ref: a booking of their own, not Ada's.
    post(client, cohort, seat("mallory@example.org", "Mallory", "app_7f3c2a91",
                              created="2026-06-02T16:40:00.000Z"))
    assert Booking.objects.get(uid=UID, attendee_key="ada.lovelace@example.org").application_id == ada.pk
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == UID


def test_a_seat_cancel_without_seats_per_time_slot_still_finds_its_seat(client, cohort, ada, grace):
    post(client, cohort, seat("ada.lovelace@example.org", "Ada Lovelace", "app_7f3c2a91"))
    post(client, cohort, seat("grace.chisholm@example.org", "Grace Chisholm", "app_grace00001",
                              created="2026-06-02T16:30:00.000Z"))
    cancel = with_email(sample("booking_cancelled", uid=UID, iCalUID=f"{UID}@Cal.com"),
                        "grace.chisholm@example.org")
    post(client, cohort, cancel)
    assert refreshed(grace).status == "waiting_first_round"
    assert refreshed(ada).status == "first_round_scheduled"
    assert not Booking.objects.filter(uid=UID, attendee_key="").exists()


# --- the place and the meeting link ------------------------------------------------------


def location_updated(location, video_url=None, created="2026-06-04T09:00:00.000Z"):
    payload = {"uid": UID, "location": location, "previousLocation": "integrations:google:meet",
               "metadata": {"videoCallUrl": video_url} if video_url else {}}
    return {"triggerEvent": "BOOKING_LOCATION_UPDATED", "createdAt": created, "payload": payload}


def test_location_update_moves_the_link_and_then_the_place(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    zoom = "https://us02web.zoom.us/j/81234567890?pwd=abc"
    response = post(client, cohort, location_updated("integrations:zoom", zoom))
    assert response.json()["outcome"] == "applied", response.content
    ada = refreshed(ada)
    assert ada.interview_meeting_url == zoom and ada.interview_location == ""
    post(client, cohort, location_updated("Office 3B, 12 Byron Street", created="2026-06-05T09:00:00.000Z"))
    ada = refreshed(ada)
    assert ada.interview_location == "Office 3B, 12 Byron Street"
    assert ada.interview_meeting_url == ""  # the office has no link
    assert ada.status == "first_round_scheduled"


def test_an_older_location_update_arriving_late_changes_nothing(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, location_updated("Office 3B", created="2026-06-05T09:00:00.000Z"))
    response = post(client, cohort, location_updated("Room 12", created="2026-06-04T09:00:00.000Z"))
    assert response.json()["outcome"] == "ignored"
    assert refreshed(ada).interview_location == "Office 3B"


def test_a_location_update_for_an_unknown_booking_is_stored_and_ignored(client, cohort):
    response = post(client, cohort, location_updated("Office 3B"))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert WebhookDelivery.objects.get().trigger_event == "BOOKING_LOCATION_UPDATED"


def test_a_street_address_location_is_kept_as_the_place(client, cohort, ada):
    post(client, cohort, sample("booking_created", location="12 Byron Street, London"))
    ada = refreshed(ada)
    assert ada.interview_location == "12 Byron Street, London"
    # An in-person booking: the metadata link has no integration to vouch for it.
    assert ada.interview_meeting_url == ""


@pytest.mark.parametrize("payload, expected", [
    # The booker set ?metadata[videoCallUrl]=… on a Google Meet booking: wrong host, refused.
    ({"location": "integrations:google:meet",
      "metadata": {"videoCallUrl": "https://evil.example/login"}}, ""),
    # Cal.com's own link wins over the booker's, even on a plausible host.
    ({"location": "integrations:daily",
      "videoCallData": {"type": "daily_video", "url": "https://app.cal.com/video/k7Qm3XyZp2RvT9wLbN4sHd"},
      "metadata": {"videoCallUrl": "https://app.cal.com/video/someone-elses-room"}},
     "https://app.cal.com/video/k7Qm3XyZp2RvT9wLbN4sHd"),
    # A link location set by the organizer beats the booker's metadata.
    ({"location": "https://zoom.us/j/111", "metadata": {"videoCallUrl": "https://evil.example/j/111"}},
     "https://zoom.us/j/111"),
    # Metadata agreeing with the generated link is fine.
    ({"location": "integrations:zoom", "videoCallData": {"url": "https://zoom.us/j/222"},
      "metadata": {"videoCallUrl": "https://zoom.us/j/222"}}, "https://zoom.us/j/222"),
    # Google Meet's link lives only in metadata (§2): believed on Meet's host.
    ({"location": "integrations:google:meet",
      "metadata": {"videoCallUrl": "https://meet.google.com/abc-defg-hij"}},
     "https://meet.google.com/abc-defg-hij"),
    # A look-alike host is not Meet's.
    ({"location": "integrations:google:meet",
      "metadata": {"videoCallUrl": "https://meet.google.com.evil.example/abc"}}, ""),
    # An in-person booking has no integration: a metadata link is the booker's, refused.
    ({"location": "Office 3B", "metadata": {"videoCallUrl": "https://meet.google.com/abc-defg-hij"}}, ""),
])
def test_the_booker_cannot_choose_the_meeting_link(payload, expected):
    data = sample("booking_created", videoCallData=None)
    data["payload"].update(payload)
    assert calcom.parse(encode(data)).meeting_url == expected


def test_a_booker_set_link_never_reaches_the_application(client, cohort, ada):
    data = sample("booking_created")
    data["payload"]["metadata"]["videoCallUrl"] = "https://evil.example/login"
    post(client, cohort, data)
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_meeting_url == ""


# --- integers from the body --------------------------------------------------------------


@pytest.mark.parametrize("value", [2**31, -1, 10**40, 1e300])
def test_an_out_of_range_ical_sequence_is_a_400_naming_the_field(client, cohort, ada, value):
    response = post(client, cohort, sample("booking_created", iCalSequence=value))
    assert response.status_code == 400
    assert "payload.iCalSequence is out of range" in response.json()["error"]
    assert WebhookDelivery.objects.get().outcome == "rejected"
    assert refreshed(ada).status == "waiting_first_round"


def test_the_largest_ical_sequence_is_stored(client, cohort, ada):
    response = post(client, cohort, sample("booking_created", iCalSequence=2**31 - 1))
    assert response.json()["outcome"] == "applied"
    assert Booking.objects.get().last_sequence == 2**31 - 1


def test_an_out_of_range_seat_count_is_a_400_naming_the_field(client, cohort):
    response = post(client, cohort, sample("booking_created", seatsPerTimeSlot=2**40))
    assert response.status_code == 400
    assert "payload.seatsPerTimeSlot is out of range" in response.json()["error"]


# --- the interviewer, who moved it, what the applicant answered ---------------------------


def test_organizer_team_and_answers_are_kept(client, cohort, ada):
    data = sample("booking_created", schedulingType="ROUND_ROBIN", team={"name": "Admissions", "id": 7,
                                                                        "members": []},
                  assignmentReason=[{"reasonEnum": "ROUND_ROBIN", "reasonString": "Least recently booked"}])
    data["payload"]["attendees"][0]["phoneNumber"] = "+44 20 7946 0958"
    post(client, cohort, data)
    booking = Booking.objects.get()
    assert (booking.organizer_name, booking.organizer_email, booking.organizer_time_zone) == (
        "Grace Hopper", "grace.hopper@example.org", "America/New_York")
    assert (booking.team, booking.scheduling_type, booking.assignment_reason) == (
        "Admissions", "ROUND_ROBIN", "Least recently booked")
    assert booking.phone == "+44 20 7946 0958"
    assert booking.responses == [["Which fellowship track are you applying to?", "Computing & Mathematics"]]
    assert refreshed(ada).interview_organizer == "Grace Hopper <grace.hopper@example.org>"


def test_reassignment_changes_the_interviewer_only(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    body = {"triggerEvent": "BOOKING_REASSIGNED", "createdAt": "2026-06-04T10:00:00.000Z",
            "payload": {"uid": UID, "organizer": {"name": "Katherine Johnson", "email": "kj@example.org",
                                                   "timeZone": "America/Chicago"},
                        "assignmentReason": "Reassigned by an admin"}}
    assert post(client, cohort, body).json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.interview_organizer == "Katherine Johnson <kj@example.org>"
    assert ada.status == "first_round_scheduled"
    assert Booking.objects.get().assignment_reason == "Reassigned by an admin"


def test_who_rescheduled_and_cancelled_and_why_are_on_the_history(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    rescheduled = post(client, cohort, sample("booking_rescheduled")).json()
    assert rescheduled["detail"].startswith(
        "Rescheduled by ada.lovelace@example.org: “A lecture at the Royal Society moved to the 9th.”")
    cancelled = post(client, cohort, sample("booking_cancelled")).json()
    assert cancelled["detail"].startswith("Cancelled by ada.lovelace@example.org: “I have accepted")
    change = StatusChange.objects.filter(application=ada).order_by("pk").last()
    assert change.new_status == "waiting_first_round"
    assert change.note.startswith("Cancelled by ada.lovelace@example.org")
    new = Booking.objects.get(uid="Pw8tLc5HnJ2vQe6RkMz3Ya")
    assert (new.rescheduled_by, new.cancelled_by) == ("ada.lovelace@example.org", "ada.lovelace@example.org")
    assert new.reschedule_reason == "A lecture at the Royal Society moved to the 9th."
    assert new.reason.startswith("I have accepted another offer")


# --- no-shows ----------------------------------------------------------------------------


def no_show(attendees=None, host=None, created="2026-06-09T15:00:00.000Z", trigger="BOOKING_NO_SHOW_UPDATED"):
    payload = {"bookingUid": UID, "bookingId": 512934, "message": "x_marked_as_no_show"}
    if attendees is not None:
        payload["attendees"] = attendees
    if host is not None:
        payload["noShowHost"] = host
    return {"triggerEvent": trigger, "createdAt": created, "payload": payload}


def test_no_show_is_marked_and_unmarked_without_moving_the_status(client, cohort, ada, time_machine):
    time_machine.move_to(datetime(2026, 6, 9, 16, 0, tzinfo=UTC))
    post(client, cohort, sample("booking_created"))
    mark = no_show([{"email": "ada.lovelace@example.org", "noShow": True}])
    assert post(client, cohort, mark).json()["outcome"] == "applied"
    ada = refreshed(ada)
    now = datetime(2026, 6, 9, 16, 0, tzinfo=UTC)
    assert ada.interview_no_show
    assert pipeline_state(ada, now=now, overdue_days=7).label == "No-show"
    assert ada.status == "first_round_scheduled"
    unmark = no_show([{"email": "ada.lovelace@example.org", "noShow": False}],
                     created="2026-06-09T15:05:00.000Z")
    post(client, cohort, unmark)
    ada = refreshed(ada)
    assert not ada.interview_no_show
    assert pipeline_state(ada, now=now, overdue_days=7).key == "held"


def test_a_late_copy_of_the_mark_does_not_undo_the_unmark(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, no_show([{"email": "ada.lovelace@example.org", "noShow": False}],
                                 created="2026-06-09T15:05:00.000Z"))
    post(client, cohort, no_show([{"email": "ada.lovelace@example.org", "noShow": True}]))
    assert not refreshed(ada).interview_no_show


def test_cal_video_no_shows_mark_the_applicant_or_the_host(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, no_show(trigger="AFTER_HOSTS_CAL_VIDEO_NO_SHOW"))
    booking = Booking.objects.get()
    assert booking.no_show_host is True and booking.no_show is None
    assert not refreshed(ada).interview_no_show
    post(client, cohort, no_show(trigger="AFTER_GUESTS_CAL_VIDEO_NO_SHOW", created="2026-06-09T15:10:00.000Z"))
    assert refreshed(ada).interview_no_show


def test_a_guest_marked_as_no_show_is_not_the_applicant(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    response = post(client, cohort, no_show([{"email": "guest@example.org", "noShow": True}]))
    assert response.json()["outcome"] == "ignored"
    assert not refreshed(ada).interview_no_show


def test_the_host_no_show_flag_is_recorded(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, no_show(host=True))
    assert Booking.objects.get().no_show_host is True


def test_two_unmatched_seats_are_two_orphaned_interviews(client, cohort):
    from orphans.models import OrphanedInterview

    post(client, cohort, seat("charles.babbage@example.org", "Charles Babbage", None))
    post(client, cohort, seat("mary.shelley@example.org", "Mary Shelley", None, created="2026-06-02T16:30:00.000Z"))
    orphans = OrphanedInterview.objects.filter(booking_uid=UID).order_by("attendee_key")
    assert [(o.attendee_key, o.email) for o in orphans] == [
        ("charles.babbage@example.org", "charles.babbage@example.org"),
        ("mary.shelley@example.org", "mary.shelley@example.org")]


def test_matching_one_orphaned_seat_leaves_the_other_seat_orphaned(client, cohort, ada):
    from orphans.models import OrphanedInterview
    from orphans.services import match_orphan

    post(client, cohort, seat("ada.home@example.net", "Ada Lovelace", None))
    post(client, cohort, seat("mary.shelley@example.org", "Mary Shelley", None, created="2026-06-02T16:30:00.000Z"))
    mine = OrphanedInterview.objects.get(attendee_key="ada.home@example.net")
    match_orphan(mine, ada, user=None)
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == UID
    other = OrphanedInterview.objects.get(attendee_key="mary.shelley@example.org")
    assert other.resolved_at is None
    assert Booking.objects.get(uid=UID, attendee_key="mary.shelley@example.org").application_id is None
