"""Calendly (PROTOCOL.md §8) and Cronofy (§9) through their real webhook views."""

import itertools
import time
from datetime import datetime, timezone

import pytest

from applications.models import StatusChange
from scheduling.models import Booking, WebhookDelivery
from scheduling.providers import calendly, cronofy

from .calcom_helpers import SAMPLES, encode, post, sample
from .calendly_helpers import (
    CRONOFY_SECRET, NEW_ID, OLD_ID, SIGNING_KEY, calendly_sample, final_cancel, new_half, post_calendly,
    post_cronofy, time_chosen,
)

UTC = timezone.utc


def refreshed(application):
    application.refresh_from_db()
    return application


@pytest.fixture
def keyed(cohort):
    cohort.calendly_signing_key, cohort.cronofy_client_secret = SIGNING_KEY, CRONOFY_SECRET
    cohort.save()
    return cohort


# --- Calendly: signatures ----------------------------------------------------------------


def test_calendly_signature_matches_the_known_answer():
    body = (SAMPLES / "calendly_invitee_created.json").read_bytes()
    expected = "t=1780417540,v1=aa3fc379f3650b5c5c484693c789ff9f4f53773b23629ac983fd1349eb62d699"
    assert calendly.sign(body, SIGNING_KEY, 1780417540) == expected
    assert calendly.verify(body, expected, SIGNING_KEY, now=1780417540 + 179)


def test_a_stale_calendly_signature_is_refused_and_nothing_is_stored(client, keyed, ada):
    stale = int(time.time()) - 200
    response = post_calendly(client, keyed, calendly_sample("invitee_created"), timestamp=stale)
    assert response.status_code == 403
    assert "more than 3 minutes" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("header, words", [
    (False, "Missing Calendly-Webhook-Signature"),
    ("v1=abc", "must look like t=<unix seconds>,v1=<hex>"),
    ("garbage", "must look like"),
])
def test_a_missing_or_malformed_calendly_signature_is_refused(client, keyed, header, words):
    response = post_calendly(client, keyed, calendly_sample("invitee_created"), header=header)
    assert response.status_code == 403 and words in response.json()["error"]


def test_a_forged_calendly_signature_is_refused(client, keyed, ada):
    body = encode(calendly_sample("invitee_created"))
    forged = calendly.sign(body, "not-the-key")
    response = post_calendly(client, keyed, body, header=forged)
    assert response.status_code == 403 and "does not match" in response.json()["error"]
    assert refreshed(ada).status == "waiting_first_round"


def test_a_cohort_without_a_calendly_key_refuses_calendly(client, cohort):
    cohort.calendly_signing_key = ""
    response = post_calendly(client, cohort, calendly_sample("invitee_created"),
                             header=calendly.sign(b"{}", "anything"))
    assert response.status_code == 403 and "no Calendly signing key" in response.json()["error"]


def test_the_calendly_url_without_its_slash_does_not_redirect(client, keyed, ada):
    path = keyed.webhook_path("calendly").rstrip("/")
    assert post_calendly(client, keyed, calendly_sample("invitee_created"), path=path).status_code == 200


# --- Calendly: the story -----------------------------------------------------------------


def test_calendly_created_schedules_the_application_named_in_utm_content(client, keyed, ada):
    ada.contact_email = "someone.else@example.org"  # the ref, not the email, matches
    ada.save()
    response = post_calendly(client, keyed, calendly_sample("invitee_created"))
    assert response.status_code == 200 and response.json()["outcome"] == "applied", response.content
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert ada.interview_meeting_url == "https://meet.google.com/xqv-trbn-kfo"
    assert ada.interview_kind == "calendly"
    assert ada.interview_organizer == "Grace Hopper <grace.hopper@example.org>"
    booking = Booking.objects.get()
    assert (booking.uid, booking.kind) == (OLD_ID, "calendly")
    assert booking.responses == [["Which fellowship track are you applying to?", "Computing & Mathematics"]]
    assert WebhookDelivery.objects.get().provider == "calendly"


def test_calendly_created_rescheduled_cancelled_moves_the_application_as_cal_com_does(client, keyed, ada):
    post_calendly(client, keyed, calendly_sample("invitee_created"))
    post_calendly(client, keyed, calendly_sample("invitee_canceled"))
    post_calendly(client, keyed, new_half())
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    assert ada.interview_booking_uid == NEW_ID
    post_calendly(client, keyed, final_cancel())
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round" and ada.interview_start is None
    changes = list(StatusChange.objects.filter(application=ada).order_by("pk"))
    assert [(c.old_status, c.new_status) for c in changes] == [
        ("waiting_first_round", "first_round_scheduled"), ("first_round_scheduled", "waiting_first_round")]
    assert changes[1].note.startswith("Cancelled by Ada Lovelace (invitee): “I have accepted")


@pytest.mark.parametrize("order", ["cancel_first", "created_first"])
def test_a_calendly_reschedule_pair_in_either_order_is_one_reschedule(client, keyed, ada, order):
    post_calendly(client, keyed, calendly_sample("invitee_created"))
    pair = [calendly_sample("invitee_canceled"), new_half()]
    if order == "created_first":
        pair.reverse()
    details = [post_calendly(client, keyed, body).json() for body in pair]
    assert all(d["outcome"] == "applied" for d in details), details
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_booking_uid == NEW_ID
    assert ada.interview_start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    # One status change in all: the first booking. The pair never flipped it.
    assert StatusChange.objects.filter(application=ada).count() == 1
    old = Booking.objects.get(uid=OLD_ID)
    assert old.rescheduled_to_uid == NEW_ID and old.state == "cancelled"
    assert old.rescheduled_by == "Ada Lovelace (invitee)"
    assert old.reschedule_reason == "A lecture at the Royal Society moved to the 9th."


def test_the_cancel_half_alone_keeps_the_interview_while_it_moves(client, keyed, ada):
    post_calendly(client, keyed, calendly_sample("invitee_created"))
    detail = post_calendly(client, keyed, calendly_sample("invitee_canceled")).json()["detail"]
    assert detail.startswith("Rescheduled by Ada Lovelace (invitee): “A lecture")
    assert "being moved to a new time" in detail
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == OLD_ID


def test_calendly_no_show_marks_and_unmarks_the_invitee(client, keyed, ada):
    post_calendly(client, keyed, calendly_sample("invitee_created"))
    mark = {"created_at": "2026-06-09T15:00:00.000000Z", "event": "invitee_no_show.created",
            "payload": {"uri": "https://api.calendly.com/invitee_no_shows/NS1",
                        "invitee": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/HDHCA5T4QZ7K2M9P",
                        "created_at": "2026-06-09T15:00:00.000000Z"}}
    assert post_calendly(client, keyed, mark).json()["outcome"] == "applied"
    assert refreshed(ada).interview_no_show
    unmark = {**mark, "event": "invitee_no_show.deleted", "created_at": "2026-06-09T15:02:00.000000Z"}
    post_calendly(client, keyed, unmark)
    assert not refreshed(ada).interview_no_show
    assert refreshed(ada).status == "first_round_scheduled"


def test_calendly_events_we_do_not_act_on_are_stored_and_ignored(client, keyed):
    body = {"created_at": "2026-06-02T16:25:40.000000Z", "event": "routing_form_submission.created",
            "payload": {"uri": "https://api.calendly.com/routing_form_submissions/X"}}
    response = post_calendly(client, keyed, body)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def test_a_calendly_body_without_times_is_stored_rejected_and_not_retried(client, keyed):
    data = calendly_sample("invitee_created")
    del data["payload"]["scheduled_event"]["start_time"]
    response = post_calendly(client, keyed, data)
    # 2xx: Calendly would retry anything else for 24 hours, then disable the subscription.
    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    assert response.json()["error"] == "Missing payload.scheduled_event.start_time."
    assert WebhookDelivery.objects.get().outcome == "rejected"


def test_a_calendly_redelivery_is_a_duplicate(client, keyed, ada):
    post_calendly(client, keyed, calendly_sample("invitee_created"))
    again = post_calendly(client, keyed, calendly_sample("invitee_created"))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"


# --- Cronofy -----------------------------------------------------------------------------


def test_cronofy_time_chosen_schedules_the_application_named_by_correlation_id(client, keyed, ada):
    ada.contact_email = "other@example.org"
    ada.save()
    response = post_cronofy(client, keyed, time_chosen())
    assert response.status_code == 200 and response.json()["outcome"] == "applied", response.content
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled" and ada.interview_kind == "cronofy"
    assert ada.interview_start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert Booking.objects.get().responses == [["track", "Computing & Mathematics"]]


def test_a_later_time_chosen_for_the_same_request_moves_the_interview(client, keyed, ada):
    post_cronofy(client, keyed, time_chosen())
    post_cronofy(client, keyed, time_chosen(start="2026-06-11T15:00:00Z", end="2026-06-11T15:30:00Z",
                                            triggered_at="2026-06-05T08:00:00Z"))
    ada = refreshed(ada)
    assert ada.interview_start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    assert StatusChange.objects.filter(application=ada).count() == 1


def test_a_cronofy_start_in_event_time_format_and_duration_give_the_end(client, keyed, ada):
    data = time_chosen()
    event = data["scheduling_request"]["event"]
    event["start"] = {"time": "2026-06-09T14:00:00Z", "tzid": "Europe/London"}
    del event["end"]
    post_cronofy(client, keyed, data)
    assert refreshed(ada).interview_end == datetime(2026, 6, 9, 14, 30, tzinfo=UTC)


def test_a_forged_cronofy_signature_is_refused(client, keyed, ada):
    body = encode(time_chosen())
    response = post_cronofy(client, keyed, body, signature=cronofy.sign(body, "wrong"))
    assert response.status_code == 403 and "does not match" in response.json()["error"]
    response = post_cronofy(client, keyed, body, signature=False)
    assert response.status_code == 403 and "Missing Cronofy-HMAC-SHA256" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("body", [
    {"notification": {"type": "scheduling_request_created", "triggered_at": "2026-06-02T16:25:40Z"}},
    {"notification": {"type": "something_new"}, "scheduling_request": "not an object"},
    {"notification": {"type": "scheduling_request_time_chosen"}, "scheduling_request": {
        "scheduling_request_id": "srq_1", "recipients": [{"email": "nobody@example.org"}],
        "event": {"start": 12, "end": ["x"], "metadata": None}}},
])
def test_unknown_cronofy_shapes_are_stored_never_a_500(client, keyed, body):
    response = post_cronofy(client, keyed, body)
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] in ("ignored", "rejected", "orphaned")
    assert WebhookDelivery.objects.get().provider == "cronofy"


def test_a_cronofy_cancel_type_returns_the_application_to_waiting(client, keyed, ada):
    post_cronofy(client, keyed, time_chosen())
    post_cronofy(client, keyed, time_chosen(kind="scheduling_request_cancelled",
                                            triggered_at="2026-06-03T10:00:00Z"))
    assert refreshed(ada).status == "waiting_first_round"


# --- every order of two providers' chains for one applicant -------------------------------


def test_any_order_of_a_calendly_reschedule_pair_mixed_with_a_cal_com_chain_ends_the_same(
        client, keyed, ada, django_db_blocker):
    """Ada booked on Cal.com and moved it; the cohort then switched to Calendly, where she booked
    again and rescheduled. Whatever order the five deliveries arrive in, she ends on the
    Calendly booking's new time, and the Calendly cancel half never moves her status."""
    from django.db import transaction

    deliveries = {
        "calcom_created": ("calcom", sample("booking_created")),
        "calcom_rescheduled": ("calcom", sample("booking_rescheduled")),
        "calendly_created": ("calendly", calendly_sample("invitee_created")),
        "calendly_cancel_half": ("calendly", calendly_sample("invitee_canceled")),
        "calendly_new_half": ("calendly", new_half()),
    }
    # The Cal.com chain happened first (createdAt 2 June 16:21 / 16:23); Calendly's booking
    # is sent at 16:25:40 the same day, its reschedule on 5 June.
    ends = set()
    for order in itertools.permutations(deliveries):
        sid = transaction.savepoint()
        for name in order:
            provider, body = deliveries[name]
            response = (post_calendly if provider == "calendly" else post)(client, keyed, body)
            assert response.status_code == 200, (order, name, response.content)
        ada.refresh_from_db()
        flips = StatusChange.objects.filter(application=ada, delivery__trigger_event="BOOKING_CANCELLED")
        assert not flips.exists(), order
        ends.add((ada.status, ada.interview_booking_uid, ada.interview_start, ada.interview_kind))
        transaction.savepoint_rollback(sid)
    assert ends == {("first_round_scheduled", NEW_ID, datetime(2026, 6, 11, 15, 0, tzinfo=UTC), "calendly")}


def test_a_calendly_timestamp_from_the_future_is_refused_too(client, keyed):
    ahead = int(time.time()) + 200
    response = post_calendly(client, keyed, calendly_sample("invitee_created"), timestamp=ahead)
    assert response.status_code == 403 and "more than 3 minutes" in response.json()["error"]


def test_a_calendly_signature_within_the_tolerance_is_accepted(client, keyed, ada):
    response = post_calendly(client, keyed, calendly_sample("invitee_created"),
                             timestamp=int(time.time()) - 150)
    assert response.status_code == 200 and response.json()["outcome"] == "applied"


def test_a_calendly_delivery_while_the_database_is_down_is_a_503_so_calendly_retries(
        client, keyed, monkeypatch):
    from django.db import OperationalError

    from scheduling import views

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views, "receive_delivery", down)
    response = post_calendly(client, keyed, calendly_sample("invitee_created"))
    assert response.status_code == 503
