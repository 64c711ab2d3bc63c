"""A reschedule lost inside an iCalUID chain (issue 10 §4), and recurring events that share one."""

from datetime import datetime, timezone

import pytest

from applications.models import StatusChange

from .calcom_helpers import post, sample

UTC = timezone.utc
A, B, C = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya", "Rz5nWq8TbK3mXe7YvL2pCd"
ICAL = "k7Qm3XyZp2RvT9wLbN4sHd@Cal.com"


def state(application):
    application.refresh_from_db()
    return application.status, application.interview_booking_uid, application.interview_start


@pytest.mark.parametrize("order", ["create first", "cancel first"])
def test_the_cancel_of_a_booking_whose_reschedule_was_lost_clears_the_old_interview(client, cohort, ada, order):
    # The cancel sample is for B (iCalSequence 2, no rescheduleUid): the reschedule A → B never came.
    bodies = [sample("booking_created"), sample("booking_cancelled")]
    for body in bodies if order == "create first" else reversed(bodies):
        assert post(client, cohort, body).json()["outcome"] in ("applied", "ignored")

    assert state(ada) == ("waiting_first_round", "", None)


def test_a_later_reschedule_whose_predecessor_is_unknown_replaces_the_old_interview(client, cohort, ada):
    post(client, cohort, sample("booking_created"))
    # A → B was lost; B → C arrives, naming B, which we never heard of.
    moved = sample("booking_rescheduled", uid=C, rescheduleUid=B, iCalSequence=2, createdAt="2026-06-08T10:00:00.000Z",
                   startTime="2026-06-12T16:00:00Z", endTime="2026-06-12T16:30:00Z")
    post(client, cohort, moved)

    assert state(ada) == ("first_round_scheduled", C, datetime(2026, 6, 12, 16, 0, tzinfo=UTC))
    post(client, cohort, sample("booking_cancelled", uid=C, iCalSequence=3, createdAt="2026-06-09T10:00:00.000Z"))
    assert state(ada) == ("waiting_first_round", "", None)
    assert StatusChange.objects.filter(application=ada).count() == 2


def occurrence(n, **overrides):
    """Occurrence n of a weekly recurring booking: own uid, shared iCalUID, iCalSequence 0."""
    return sample("booking_created", uid=f"rEcUr{n}xZp2RvT9wLbN4sHd"[:22], iCalUID=ICAL, iCalSequence=0,
                  createdAt=f"2026-06-02T16:21:07.{480 + n}Z", startTime=f"2026-06-{8 + 7 * n:02d}T14:00:00Z",
                  endTime=f"2026-06-{8 + 7 * n:02d}T14:30:00Z", **overrides)


def test_cancelling_one_occurrence_of_a_recurring_booking_keeps_the_others(client, cohort, ada):
    for n in (1, 2):
        post(client, cohort, occurrence(n))
    first_uid, second_uid = occurrence(1)["payload"]["uid"], occurrence(2)["payload"]["uid"]
    assert state(ada)[0] == "first_round_scheduled"

    # Cancelling occurrence 2 sends its iCalSequence + 1 (PROTOCOL.md §4): 1, above occurrence 1's 0.
    post(client, cohort, sample("booking_cancelled", uid=second_uid, iCalUID=ICAL, iCalSequence=1,
                                createdAt="2026-06-05T09:00:00.000Z", startTime="2026-06-22T14:00:00+00:00",
                                endTime="2026-06-22T14:30:00+00:00"))

    assert state(ada) == ("first_round_scheduled", first_uid, datetime(2026, 6, 15, 14, 0, tzinfo=UTC))


def test_a_rescheduled_occurrence_replaces_only_its_own_predecessor(client, cohort, ada):
    for n in (1, 2):
        post(client, cohort, occurrence(n))
    first_uid, second_uid = occurrence(1)["payload"]["uid"], occurrence(2)["payload"]["uid"]
    post(client, cohort, sample("booking_rescheduled", uid=C, rescheduleUid=second_uid, iCalUID=ICAL, iCalSequence=1,
                                createdAt="2026-06-05T09:00:00.000Z", startTime="2026-06-23T14:00:00Z",
                                endTime="2026-06-23T14:30:00Z"))
    post(client, cohort, sample("booking_cancelled", uid=C, iCalUID=ICAL, iCalSequence=2,
                                createdAt="2026-06-06T09:00:00.000Z"))

    # The moved occurrence is cancelled; occurrence 1 (version 0, not linked to it) still stands.
    assert state(ada) == ("first_round_scheduled", first_uid, datetime(2026, 6, 15, 14, 0, tzinfo=UTC))
