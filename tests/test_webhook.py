"""The Cal.com webhook through the real view, with signed bodies built from the shared samples."""

import json
from datetime import datetime, timezone

import pytest

from applications.models import StatusChange
from orphans.models import OrphanedInterview
from scheduling.models import Booking, Outcome, WebhookDelivery

from .calcom_helpers import encode, post, sample, with_email
from .factories import ApplicationFactory, CohortFactory

UTC = timezone.utc
OLD_UID, NEW_UID = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya"


def refreshed(application):
    application.refresh_from_db()
    return application


# --- the main story ----------------------------------------------------------------------


def test_created_rescheduled_cancelled_moves_a_waiting_applicant_and_back(client, cohort, ada):
    response = post(client, cohort, sample("booking_created"))
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.current_stage == "first_round"
    assert ada.interview_start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert ada.interview_end == datetime(2026, 6, 9, 14, 30, tzinfo=UTC)
    assert ada.interview_booking_uid == OLD_UID
    assert ada.interview_meeting_url == "https://meet.google.com/xqv-trbn-kfo"

    assert post(client, cohort, sample("booking_rescheduled")).json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.interview_meeting_url == "https://meet.google.com/xqv-trbn-kfo"

    assert post(client, cohort, sample("booking_cancelled")).json()["outcome"] == "applied"
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round"
    assert ada.interview_start is None and ada.interview_end is None
    assert ada.interview_booking_uid == "" and ada.interview_meeting_url == ""

    changes = list(StatusChange.objects.filter(application=ada).order_by("pk"))
    assert [(c.old_status, c.new_status) for c in changes] == [
        ("waiting_first_round", "first_round_scheduled"),
        ("first_round_scheduled", "waiting_first_round"),
    ]
    assert all(c.delivery is not None for c in changes)
    assert changes[0].delivery.trigger_event == "BOOKING_CREATED"


def test_every_delivery_is_stored_with_its_outcome(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    delivery = WebhookDelivery.objects.get()
    body = encode(sample("booking_created"))
    assert delivery.body_bytes == body
    assert delivery.trigger_event == "BOOKING_CREATED"
    assert delivery.booking_uid == OLD_UID
    assert delivery.event_created_at == datetime(2026, 6, 2, 16, 21, 7, 482000, tzinfo=UTC)
    assert delivery.outcome == Outcome.APPLIED
    assert delivery.application == ada
    assert delivery.received_at is not None and delivery.processed_at is not None


@pytest.mark.parametrize(
    ("before", "after", "stage"),
    [
        ("new", "first_round_scheduled", "first_round"),
        ("waiting_first_round", "first_round_scheduled", "first_round"),
        ("waiting_second_round", "second_round_scheduled", "second_round"),
        ("first_round_scheduled", "first_round_scheduled", "first_round"),
        ("needs_first_decision", "needs_first_decision", "first_round"),
        ("needs_final_decision", "needs_final_decision", "second_round"),
        ("accepted", "accepted", "decision"),
        ("waitlist", "waitlist", "decision"),
        ("declined", "declined", "decision"),
    ],
)
def test_booking_created_moves_only_the_statuses_the_rules_name(client, cohort, before, after, stage):
    application = ApplicationFactory(cohort=cohort, contact_email="ada.lovelace@example.org",
                                     status=before)
    assert post(client, cohort, sample("booking_created", metadata={})).status_code == 200
    application = refreshed(application)
    assert application.status == after
    assert application.current_stage == stage
    # The schedule is saved whatever the status.
    assert application.interview_booking_uid == OLD_UID


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("first_round_scheduled", "waiting_first_round"),
        ("second_round_scheduled", "waiting_second_round"),
        ("needs_first_decision", "needs_first_decision"),
        ("accepted", "accepted"),
    ],
)
def test_cancelling_the_current_booking_reverts_only_scheduled_statuses(client, cohort, before, after):
    application = ApplicationFactory(cohort=cohort, contact_email="ada.lovelace@example.org",
                                     status="waiting_first_round")
    post(client, cohort, sample("booking_created", metadata={}))
    type(application).objects.filter(pk=application.pk).update(status=before)
    post(client, cohort, sample("booking_cancelled", uid=OLD_UID))
    application = refreshed(application)
    assert application.status == after
    assert application.interview_booking_uid == "" and application.interview_start is None


# --- matching ----------------------------------------------------------------------------


def test_metadata_application_id_wins_over_email(client, cohort, ada):
    other = ApplicationFactory(cohort=cohort, contact_email="someone@example.org", status="new")
    data = with_email(sample("booking_created", metadata={"application_id": other.public_id}),
                      "ada.lovelace@example.org")
    post(client, cohort, data)
    assert refreshed(other).status == "first_round_scheduled"
    assert refreshed(ada).status == "waiting_first_round"


def test_numeric_application_id_is_refused_and_email_decides(client, cohort, ada):
    # Anyone could add ?metadata[application_id]=17 to the public page and take over #17.
    application = ApplicationFactory(cohort=cohort, contact_email="x@example.org", status="new")
    response = post(client, cohort, sample("booking_created", metadata={"application_id": str(application.pk)}))
    assert refreshed(application).status == "new"
    assert refreshed(ada).status == "first_round_scheduled"
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.match_rule == "email"
    assert "never accepted" in delivery.attention


def test_application_id_of_another_cohort_is_ignored_and_email_decides(client, cohort, ada):
    stranger = ApplicationFactory(cohort=CohortFactory(), status="new")
    post(client, cohort, sample("booking_created", metadata={"application_id": stranger.public_id}))
    assert refreshed(stranger).status == "new"
    assert refreshed(ada).status == "first_round_scheduled"


def test_booker_email_matches_trimmed_and_case_insensitively(client, cohort, ada):
    post(client, cohort, with_email(sample("booking_created", metadata={}), " ADA.Lovelace@Example.org "))
    assert refreshed(ada).status == "first_round_scheduled"


def test_alternate_email_matches(client, cohort, ada):
    ada.alternate_emails.create(email="countess@example.org")
    post(client, cohort, with_email(sample("booking_created", metadata={}), "countess@example.org"))
    assert refreshed(ada).status == "first_round_scheduled"


def test_reschedule_follows_the_booking_chain_even_when_the_email_changed(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, with_email(sample("booking_rescheduled"), "ada@newmail.example.org"))
    ada = refreshed(ada)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.status == "first_round_scheduled"
    assert not OrphanedInterview.objects.exists()


def test_reschedule_of_a_booking_we_never_saw_matches_by_email(client, cohort, ada):
    post(client, cohort, sample("booking_rescheduled"))
    ada = refreshed(ada)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.status == "first_round_scheduled"


def test_unknown_email_makes_one_orphaned_interview_however_often_delivered(client, cohort):
    data = with_email(sample("booking_created", metadata={"videoCallUrl": "https://meet.google.com/xqv-trbn-kfo"}),
                      "stranger@example.org", "Sam Stranger")
    assert post(client, cohort, data).json()["outcome"] == "orphaned"
    data["createdAt"] = "2026-06-02T16:21:08.000Z"  # a second subscription's copy
    assert post(client, cohort, data).json()["outcome"] == "orphaned"
    assert post(client, cohort, data).json()["outcome"] == "duplicate"
    orphan = OrphanedInterview.objects.get()
    assert orphan.email == "stranger@example.org"
    assert orphan.name == "Sam Stranger"
    assert orphan.booking_uid == OLD_UID
    assert orphan.start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert orphan.meeting_url == "https://meet.google.com/xqv-trbn-kfo"
    assert orphan.reason == "no_match"
    assert orphan.cohort == cohort and orphan.resolved_at is None


def test_two_applications_with_the_email_make_an_ambiguous_orphan_not_a_guess(client, cohort):
    first = ApplicationFactory(cohort=cohort, contact_email="twin@example.org", status="new")
    second = ApplicationFactory(cohort=cohort, contact_email="twin@example.org", status="new")
    post(client, cohort, with_email(sample("booking_created", metadata={}), "twin@example.org"))
    assert OrphanedInterview.objects.get().reason == "ambiguous"
    assert refreshed(first).status == "new" and refreshed(second).status == "new"


def test_reschedule_of_an_orphaned_booking_moves_the_orphan_instead_of_adding_one(client, cohort):
    post(client, cohort, with_email(sample("booking_created", metadata={}), "stranger@example.org"))
    post(client, cohort, with_email(sample("booking_rescheduled"), "stranger@example.org"))
    orphan = OrphanedInterview.objects.get()
    assert orphan.booking_uid == NEW_UID
    assert orphan.start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)


def test_cancelling_an_orphaned_booking_dismisses_its_orphan(client, cohort):
    post(client, cohort, with_email(sample("booking_created", metadata={}), "stranger@example.org"))
    response = post(client, cohort, with_email(sample("booking_cancelled", uid=OLD_UID), "stranger@example.org"))
    assert response.json()["outcome"] == "ignored"
    orphan = OrphanedInterview.objects.get()
    assert orphan.resolution == "dismissed" and orphan.resolved_at is not None


def test_orphans_and_matches_stay_inside_the_cohort(client, cohort):
    ApplicationFactory(cohort=CohortFactory(), contact_email="ada.lovelace@example.org", status="new")
    assert post(client, cohort, sample("booking_created", metadata={})).json()["outcome"] == "orphaned"


# --- the other triggers ------------------------------------------------------------------


def test_cancelling_a_superseded_booking_changes_nothing(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, sample("booking_rescheduled"))
    post(client, cohort, sample("booking_cancelled", uid=OLD_UID, createdAt="2026-06-06T00:00:00.000Z"))
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_booking_uid == NEW_UID


def test_host_request_reschedule_reverts_and_the_next_reschedule_schedules_again(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    cancel = sample("booking_cancelled", uid=OLD_UID, requestReschedule=True,
                    cancellationReason="Panel chair is ill", cancelledBy="grace.hopper@example.org")
    post(client, cohort, cancel)
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round"
    assert ada.reschedule_requested is True
    assert ada.reschedule_reason == "Panel chair is ill"
    assert ada.interview_booking_uid == ""

    post(client, cohort, sample("booking_rescheduled", createdAt="2026-06-10T12:00:00.000Z"))
    ada = refreshed(ada)
    assert ada.status == "first_round_scheduled"
    assert ada.interview_booking_uid == NEW_UID
    assert ada.reschedule_requested is False and ada.reschedule_reason == ""


def test_requested_booking_is_pending_and_rejection_drops_it(client, cohort):
    mary = ApplicationFactory(cohort=cohort, public_id="app_2b81d0c4", status="waiting_second_round",
                              contact_email="mary.somerville@example.org")
    assert post(client, cohort, sample("booking_requested")).json()["outcome"] == "applied"
    mary = refreshed(mary)
    assert mary.status == "waiting_second_round"
    assert mary.pending_booking_uid == "Fz4nVb8QcK2mWx7TrL9pJe"
    assert mary.pending_start == datetime(2026, 6, 16, 13, 0, tzinfo=UTC)
    assert mary.interview_booking_uid == ""

    assert post(client, cohort, sample("booking_rejected")).json()["outcome"] == "applied"
    mary = refreshed(mary)
    assert mary.pending_booking_uid == "" and mary.pending_start is None
    assert mary.status == "waiting_second_round"


def test_host_confirmation_schedules_a_requested_booking(client, cohort):
    mary = ApplicationFactory(cohort=cohort, public_id="app_2b81d0c4", status="waiting_second_round",
                              contact_email="mary.somerville@example.org")
    post(client, cohort, sample("booking_requested"))
    # Confirmation: BOOKING_CREATED for the same uid, metadata replaced by {videoCallUrl} (§2).
    confirmed = sample("booking_requested", triggerEvent="BOOKING_CREATED", status="ACCEPTED",
                       createdAt="2026-06-04T09:00:00.000Z",
                       metadata={"videoCallUrl": "https://meet.google.com/abc-defg-hij"})
    post(client, cohort, confirmed)
    mary = refreshed(mary)
    assert mary.status == "second_round_scheduled"
    assert mary.interview_booking_uid == "Fz4nVb8QcK2mWx7TrL9pJe"
    assert mary.interview_meeting_url == "https://meet.google.com/abc-defg-hij"
    assert mary.pending_booking_uid == ""


def test_reschedule_needing_confirmation_keeps_its_link_until_confirmed(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    requested = sample("booking_rescheduled", triggerEvent="BOOKING_REQUESTED", status="PENDING")
    post(client, cohort, requested)
    ada = refreshed(ada)
    assert ada.interview_booking_uid == OLD_UID  # the old time still stands
    assert ada.pending_booking_uid == NEW_UID
    # The host confirms: BOOKING_CREATED for the new uid with no rescheduleUid (§3 edge 2).
    confirmed = sample("booking_rescheduled", triggerEvent="BOOKING_CREATED", rescheduleUid=None,
                       rescheduleId=None, createdAt="2026-06-06T10:00:00.000Z")
    post(client, cohort, confirmed)
    ada = refreshed(ada)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.pending_booking_uid == ""
    assert Booking.objects.get(uid=NEW_UID).reschedule_uid == OLD_UID


def test_meeting_ended_records_the_interview_without_changing_status(client, cohort):
    emmy = ApplicationFactory(cohort=cohort, contact_email="emmy.noether@example.org",
                              status="waiting_first_round")
    created = with_email(sample("booking_created", uid="Qh2sXe7WmN4bTy9KpR5cLd", metadata={},
                                iCalUID="Vj6kDa3PfM8nZs2QwT7gHb@Cal.com",
                                startTime="2026-06-12T12:00:00Z", endTime="2026-06-12T12:30:00Z"),
                         "emmy.noether@example.org")
    post(client, cohort, created)
    response = post(client, cohort, sample("meeting_ended"))
    assert response.json()["outcome"] == "applied"
    emmy = refreshed(emmy)
    assert emmy.status == "first_round_scheduled"
    assert emmy.interview_ended_at == datetime(2026, 6, 12, 12, 30, tzinfo=UTC)


def test_meeting_ended_for_a_booking_we_missed_records_it_without_moving_status(client, cohort):
    emmy = ApplicationFactory(cohort=cohort, contact_email="emmy.noether@example.org",
                              status="waiting_first_round")
    response = post(client, cohort, sample("meeting_ended"))
    assert response.json()["outcome"] == "applied"
    emmy = refreshed(emmy)
    assert emmy.status == "waiting_first_round"
    assert emmy.interview_ended_at == datetime(2026, 6, 12, 12, 30, tzinfo=UTC)


def test_meeting_ended_of_a_reschedule_we_missed_keeps_the_application_scheduled(client, cohort):
    emmy = ApplicationFactory(cohort=cohort, contact_email="emmy.noether@example.org",
                              status="waiting_first_round")
    original = with_email(sample("booking_created", uid="Vj6kDa3PfM8nZs2QwT7gHb", metadata={},
                                 iCalUID="Vj6kDa3PfM8nZs2QwT7gHb@Cal.com"), "emmy.noether@example.org")
    post(client, cohort, original)
    post(client, cohort, sample("meeting_ended"))  # its fromReschedule points at the original
    emmy = refreshed(emmy)
    assert emmy.status == "first_round_scheduled"
    assert emmy.interview_booking_uid == "Qh2sXe7WmN4bTy9KpR5cLd"
    assert emmy.interview_ended_at is not None


def test_ping_answers_200_and_changes_nothing(client, cohort, ada):
    response = post(client, cohort, sample("ping"))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert WebhookDelivery.objects.get().outcome == "ignored"
    assert refreshed(ada).status == "waiting_first_round"


def test_other_triggers_are_stored_and_ignored(client, cohort):
    body = {"triggerEvent": "RECORDING_READY", "createdAt": "2026-06-12T13:00:00.000Z",
            "payload": {"uid": OLD_UID, "downloadLink": "https://example.org/r.mp4"}}
    response = post(client, cohort, body)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert WebhookDelivery.objects.get().trigger_event == "RECORDING_READY"


# --- ordering ----------------------------------------------------------------------------


def test_cancel_arriving_before_its_create_leaves_the_application_unscheduled(client, cohort, ada):
    post(client, cohort, sample("booking_cancelled", uid=OLD_UID))
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    assert ada.status == "waiting_first_round"
    assert ada.interview_booking_uid == ""
    assert Booking.objects.get(uid=OLD_UID).state == "cancelled"


def test_reschedule_arriving_before_the_create_still_ends_on_the_new_time(client, cohort, ada):
    post(client, cohort, sample("booking_rescheduled"))
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.interview_start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)


def test_same_created_at_orders_by_ical_sequence(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    same_time = "2026-06-02T16:21:07.482Z"
    post(client, cohort, sample("booking_cancelled", uid=OLD_UID, createdAt=same_time, iCalSequence=1))
    assert refreshed(ada).status == "waiting_first_round"


def test_a_new_booking_replaces_a_past_rounds_booking(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    ada.move_to("needs_first_decision")
    ada.move_to("waiting_second_round")
    second = sample("booking_created", uid="Sec0ndR0undUid00000000", iCalUID="Sec0ndR0undUid00000000@Cal.com",
                    createdAt="2026-06-20T10:00:00.000Z", startTime="2026-06-25T10:00:00Z",
                    endTime="2026-06-25T10:45:00Z")
    post(client, cohort, second)
    ada = refreshed(ada)
    assert ada.status == "second_round_scheduled"
    assert ada.interview_booking_uid == "Sec0ndR0undUid00000000"
    post(client, cohort, sample("booking_cancelled", uid="Sec0ndR0undUid00000000",
                                iCalUID="Sec0ndR0undUid00000000@Cal.com", createdAt="2026-06-21T10:00:00.000Z"))
    ada = refreshed(ada)
    assert ada.status == "waiting_second_round"
    assert ada.interview_booking_uid == ""  # the first round's booking does not come back


# --- deduplication -----------------------------------------------------------------------


def test_byte_identical_redelivery_has_no_second_effect(client, cohort, ada):
    body = encode(sample("booking_created"))
    assert post(client, cohort, body).json()["outcome"] == "applied"
    response = post(client, cohort, body)
    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().redeliveries == 1
    assert StatusChange.objects.count() == 1


def test_reserialized_redelivery_is_a_duplicate_and_is_kept(client, cohort, ada):
    post(client, cohort, encode(sample("booking_created")))
    pretty = json.dumps(sample("booking_created"), indent=4).encode()
    response = post(client, cohort, pretty)
    assert response.json()["outcome"] == "duplicate"
    copy = WebhookDelivery.objects.get(body=pretty)
    assert copy.outcome == "duplicate" and copy.duplicate_of is not None
    assert StatusChange.objects.count() == 1


def test_copies_from_two_subscriptions_apply_once(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    post(client, cohort, sample("booking_created", createdAt="2026-06-02T16:21:07.999Z"))
    assert WebhookDelivery.objects.filter(outcome="applied").count() == 2
    assert StatusChange.objects.count() == 1


# --- the door: URL, method, signature ----------------------------------------------------


def test_url_without_trailing_slash_works_without_a_redirect(client, cohort, ada):
    response = post(client, cohort, sample("booking_created"), path=cohort.webhook_path().rstrip("/"))
    assert response.status_code == 200
    assert refreshed(ada).status == "first_round_scheduled"


def test_get_is_405(client, cohort):
    response = client.get(cohort.webhook_path())
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_unknown_key_is_404(client, cohort):
    response = client.post("/webhooks/calcom/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"] == "Unknown webhook URL."


@pytest.mark.parametrize(("signature", "message"), [
    (False, "Missing X-Cal-Signature-256"),
    ("", "Missing X-Cal-Signature-256"),
    ("no-secret-provided", "no-secret-provided"),
    ("0" * 64, "does not match"),
])
def test_bad_signatures_are_403_and_nothing_is_stored(client, cohort, ada, signature, message):
    response = post(client, cohort, sample("booking_created"), signature=signature)
    assert response.status_code == 403
    assert message in response.json()["error"]
    assert not WebhookDelivery.objects.exists()
    assert refreshed(ada).status == "waiting_first_round"


def test_another_cohorts_secret_cannot_post_here(client, cohort, ada):
    other = CohortFactory()
    from scheduling.providers import calcom

    body = encode(sample("booking_created"))
    response = post(client, cohort, body, signature=calcom.sign(body, other.webhook_secret))
    assert response.status_code == 403


def test_rotated_secret_refuses_the_old_one(client, cohort, ada):
    from scheduling.providers import calcom

    body = encode(sample("booking_created"))
    old = calcom.sign(body, cohort.webhook_secret)
    cohort.rotate_webhook_secret()
    assert post(client, cohort, body, signature=old).status_code == 403
    assert post(client, cohort, body).status_code == 200


# --- bad input ---------------------------------------------------------------------------


BAD = [
    (b"not json", "not valid JSON"),
    (b'"a string"', "must be a JSON object"),
    (b'{"payload": {}}', "Missing triggerEvent"),
    (b'{"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-06-02T16:21:07.482Z"}', "Missing payload"),
    (encode(with_email(sample("booking_created"), "nobody")), "No usable booker email"),
    (encode(sample("booking_created", startTime="soon")), "payload.startTime is not an ISO-8601"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_bodies_get_400_naming_the_problem_and_are_stored_rejected(client, cohort, ada, body, message):
    response = post(client, cohort, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "rejected" and message in delivery.error
    assert delivery.body_bytes == body
    assert refreshed(ada).status == "waiting_first_round"


def test_a_redelivered_bad_body_is_rejected_again_not_called_a_duplicate(client, cohort):
    assert post(client, cohort, b"not json").status_code == 400
    assert post(client, cohort, b"not json").status_code == 400
    assert WebhookDelivery.objects.get().redeliveries == 1


def test_body_over_one_mebibyte_is_refused_unread_with_413(client, cohort):
    """Issue 14: refused on its Content-Length, before a byte is read, so nothing can be stored."""
    data = sample("booking_created")
    data["payload"]["description"] = "x" * (1024 * 1024)
    response = post(client, cohort, data)
    assert response.status_code == 413
    assert "limit is 1048576" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_crash_while_applying_is_stored_as_failed_and_reprocessable(client, cohort, ada, monkeypatch):
    from django.core.management import call_command

    from scheduling import services

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(services, "sync_application", boom)
    response = post(client, cohort, sample("booking_created"))
    assert response.status_code == 500
    assert response.json()["outcome"] == "failed"
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "failed" and "simulated bug" in delivery.error
    assert refreshed(ada).status == "waiting_first_round"  # the transaction rolled back

    monkeypatch.undo()
    call_command("reprocess_webhooks")
    delivery.refresh_from_db()
    assert delivery.outcome == "applied" and delivery.attempts == 2
    assert refreshed(ada).status == "first_round_scheduled"


def test_a_redelivery_completes_a_failed_first_copy(client, cohort, ada, monkeypatch):
    from scheduling import services

    monkeypatch.setattr(services, "sync_application", lambda *a, **k: 1 / 0)
    post(client, cohort, sample("booking_created"))
    monkeypatch.undo()
    response = post(client, cohort, sample("booking_created"))
    assert response.json()["outcome"] == "applied"
    assert refreshed(ada).status == "first_round_scheduled"
    assert WebhookDelivery.objects.count() == 1


# --- regressions found in review -----------------------------------------------------------


def test_a_pending_request_while_an_old_rounds_booking_is_current_keeps_the_status(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    ada.move_to("needs_first_decision")
    ada.move_to("waiting_second_round")
    request = sample("booking_requested", uid="R2PendingUid0000000000", iCalUID="R2PendingUid0000000000@Cal.com",
                     metadata={"application_id": "app_7f3c2a91"})
    post(client, cohort, with_email(request, "ada.lovelace@example.org"))
    ada = refreshed(ada)
    assert ada.pending_booking_uid == "R2PendingUid0000000000"
    assert ada.status == "waiting_second_round"


def test_a_reschedule_with_a_new_email_arriving_before_its_create_is_adopted(client, cohort, ada):
    assert post(client, cohort, with_email(sample("booking_rescheduled"), "ada@newmail.example.org")
                ).json()["outcome"] == "orphaned"
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    assert ada.interview_booking_uid == NEW_UID
    assert ada.status == "first_round_scheduled"
    assert OrphanedInterview.objects.get().resolution == "matched"


def test_a_late_copy_of_an_older_rounds_create_does_not_replace_the_current_booking(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    ada = refreshed(ada)
    ada.move_to("needs_first_decision")
    ada.move_to("waiting_second_round")
    post(client, cohort, sample("booking_created", uid="Sec0ndR0undUid00000000", iCalUID="Sec0ndR0undUid00000000@Cal.com",
                                createdAt="2026-06-20T10:00:00.000Z", startTime="2026-06-25T10:00:00Z",
                                endTime="2026-06-25T10:45:00Z"))
    post(client, cohort, sample("booking_created", createdAt="2026-06-02T16:21:07.999Z"))
    ada = refreshed(ada)
    assert ada.interview_booking_uid == "Sec0ndR0undUid00000000"
    assert ada.status == "second_round_scheduled"


def test_application_id_claiming_a_booking_resyncs_its_previous_owner(client, cohort, ada):
    mary = ApplicationFactory(cohort=cohort, public_id="app_2b81d0c4", status="waiting_second_round",
                              contact_email="mary.somerville@example.org")
    confirmed = sample("booking_requested", triggerEvent="BOOKING_CREATED", status="ACCEPTED",
                       createdAt="2026-06-04T09:00:00.000Z",
                       metadata={"videoCallUrl": "https://meet.google.com/abc-defg-hij"})
    post(client, cohort, with_email(confirmed, "ada.lovelace@example.org"))
    assert refreshed(ada).status == "first_round_scheduled"
    post(client, cohort, with_email(sample("booking_requested"), "ada.lovelace@example.org"))  # late, names Mary
    mary = refreshed(mary)
    assert (mary.interview_booking_uid, mary.status) == ("Fz4nVb8QcK2mWx7TrL9pJe", "second_round_scheduled")
    ada = refreshed(ada)
    assert (ada.interview_booking_uid, ada.status) == ("", "waiting_first_round")


def test_an_unmatched_chain_out_of_order_keeps_its_orphan_on_the_newest_booking(client, cohort):
    post(client, cohort, with_email(sample("booking_rescheduled"), "stranger@example.org"))
    post(client, cohort, with_email(sample("booking_created", metadata={}), "stranger@example.org"))
    orphan = OrphanedInterview.objects.get()
    assert orphan.booking_uid == NEW_UID
    assert orphan.start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)


def test_without_created_at_ical_sequence_orders_and_reserialised_copies_dedupe(client, cohort, ada):
    created = sample("booking_created", createdAt=None, iCalSequence=0)
    post(client, cohort, sample("booking_cancelled", uid=OLD_UID, createdAt=None, iCalSequence=1))
    post(client, cohort, encode(created))
    assert refreshed(ada).status == "waiting_first_round"
    assert post(client, cohort, json.dumps(created, indent=2).encode()).json()["outcome"] == "duplicate"
    assert refreshed(ada).interview_booking_uid == ""


@pytest.mark.parametrize(("key", "value"), [
    ("metadata", {"application_id": "²"}),
    ("metadata", None),
    ("iCalSequence", "0"),
    ("attendees", []),
    ("title", "Interview\u0000 with NUL"),
    ("rescheduleUid", None),
])
def test_odd_but_valid_fields_are_applied_not_500(client, cohort, ada, key, value):
    data = sample("booking_created")
    data["payload"][key] = value  # None stays a JSON null here
    response = post(client, cohort, data)
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "applied"


def test_non_ascii_signature_is_403_json(client, cohort):
    response = post(client, cohort, sample("booking_created"), signature="é" * 64)
    assert response.status_code == 403 and "does not match" in response.json()["error"]
