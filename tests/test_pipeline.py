"""The Pipeline state: every state and boundary of applications.pipeline.pipeline_state, and
the SQL twin (rank_expression, state_filter) agreeing with it row by row.

Adding a state: one branch in pipeline_state and one row in STATES.
"""

import zoneinfo
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from applications.models import Application
from applications.pipeline import (
    FILTERS, REST, pipeline_state, rank_expression, state_filter, with_waiting_since,
)
from scheduling.status import SCHEDULED

from .factories import ApplicationFactory

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=dt_timezone.utc)  # a Wednesday; 13:00 in London
LONDON = zoneinfo.ZoneInfo("Europe/London")
H, D = timedelta(hours=1), timedelta(days=1)
SCHED = {"status": "first_round_scheduled", "current_stage": "first_round"}
WAIT1 = {"status": "waiting_first_round", "current_stage": "first_round"}
WAIT2 = {"status": "waiting_second_round", "current_stage": "second_round"}

# (id, application fields, overdue_days, key, label, tone, sort_rank)
STATES = [
    ("reschedule", {**WAIT1, "reschedule_requested": True, "reschedule_reason": "Chair travelling"}, 7,
     "reschedule", "Reschedule requested", "attention", 1),
    ("reschedule-beats-a-held-interview", {**SCHED, "reschedule_requested": True,
     "interview_start": NOW - 3 * H, "interview_end": NOW - 2 * H}, 7,
     "reschedule", "Reschedule requested", "attention", 1),
    ("held-by-meeting-ended", {**SCHED, "interview_start": NOW - 20 * D, "interview_end": NOW - 20 * D + H,
     "interview_ended_at": NOW - 20 * D + H}, 7, "held", "Held, needs decision", "attention", 0),
    ("held-ended-early", {**SCHED, "interview_start": NOW - 10 * 60 * timedelta(seconds=1),
     "interview_end": NOW + H, "interview_ended_at": NOW - timedelta(minutes=1)}, 7,
     "held", "Held, needs decision", "attention", 0),
    ("held-by-end-time", {**SCHED, "interview_start": NOW - H, "interview_end": NOW - timedelta(minutes=30)}, 7,
     "held", "Held, needs decision", "attention", 0),
    ("held-second-round", {"status": "second_round_scheduled", "current_stage": "second_round",
     "interview_start": NOW - 2 * D, "interview_end": NOW - 2 * D + H}, 7,
     "held", "Held, needs decision", "attention", 0),
    ("held-without-end-time", {**SCHED, "interview_start": NOW - 2 * H}, 7,
     "held", "Held, needs decision", "attention", 0),
    ("in-progress", {**SCHED, "interview_start": NOW - timedelta(minutes=10),
     "interview_end": NOW + timedelta(minutes=20)}, 7, "now", "Now", "ok", REST),
    ("in-progress-without-end-time", {**SCHED, "interview_start": NOW - timedelta(minutes=10)}, 7,
     "now", "Now", "ok", REST),
    ("ends-exactly-now", {**SCHED, "interview_start": NOW - H, "interview_end": NOW}, 7,
     "held", "Held, needs decision", "attention", 0),
    ("today", {**SCHED, "interview_start": NOW + 3 * H, "interview_end": NOW + 4 * H}, 7,
     "today", "Today 16:00", "info", REST),
    ("today-with-pending-new-time", {**SCHED, "interview_start": NOW + 3 * H, "pending_booking_uid": "p1"}, 7,
     "today", "Today 16:00", "info", REST),
    ("tomorrow", {**SCHED, "interview_start": NOW + D - 3.5 * H}, 7,
     "tomorrow", "Tomorrow 09:30", "info", REST),
    ("after-midnight-in-the-viewers-zone", {**SCHED, "interview_start": NOW + 11.5 * H}, 7,
     "tomorrow", "Tomorrow 00:30", "info", REST),
    ("in-3-days", {**SCHED, "interview_start": NOW + 3 * D}, 7, "upcoming", "in 3 days", "info", REST),
    ("second-round-tomorrow", {"status": "second_round_scheduled", "current_stage": "second_round",
     "interview_start": NOW + D}, 7, "tomorrow", "Tomorrow 13:00", "info", REST),
    ("scheduled-status-without-interview", {**SCHED}, 7, "none", "—", "muted", REST),
    ("applicant-says-booked", {**SCHED, "interview_start": NOW + 6 * D + 2 * H, "interview_kind": "applicant",
     "interview_unverified": True}, 7,
     "unverified", "Applicant says booked: Tue 16 Jun 15:00, unverified", "warning", 4),
    ("applicant-says-booked-today", {**SCHED, "interview_start": NOW + 2 * H, "interview_kind": "applicant",
     "interview_unverified": True}, 7,
     "unverified", "Applicant says booked: Wed 10 Jun 15:00, unverified", "warning", 4),
    ("held-beats-unverified", {**SCHED, "interview_start": NOW - 2 * H, "interview_kind": "applicant",
     "interview_unverified": True}, 7, "held", "Held, needs decision", "attention", 0),
    ("applicant-booking-confirmed", {**SCHED, "interview_start": NOW + 3 * D, "interview_kind": "applicant"}, 7,
     "upcoming", "in 3 days", "info", REST),
    ("scheduled-offline", {**SCHED, "interview_start": NOW + 3 * D, "interview_kind": "offline"}, 7,
     "upcoming", "in 3 days", "info", REST),
    ("pending", {**WAIT1, "pending_booking_uid": "p2", "pending_start": NOW + 2 * D,
     "status_changed_at": NOW - 30 * D}, 7, "pending", "Pending confirmation", "warning", 4),
    ("pending-on-a-new-application", {"status": "new", "pending_booking_uid": "p3"}, 7,
     "pending", "Pending confirmation", "warning", 4),
    ("waiting-since-today", {**WAIT1, "status_changed_at": NOW - 3 * H}, 7,
     "waiting", "Waiting since today", "muted", REST),
    ("waiting-1-day", {**WAIT1, "status_changed_at": NOW - D - H}, 7, "waiting", "Waiting 1 day", "muted", REST),
    ("waiting-just-under-the-limit", {**WAIT1, "status_changed_at": NOW - 7 * D + timedelta(seconds=1)}, 7,
     "waiting", "Waiting 6 days", "muted", REST),
    ("overdue-at-the-limit", {**WAIT1, "status_changed_at": NOW - 7 * D}, 7,
     "overdue", "Waiting 7 days", "attention", 3),
    ("overdue-second-round", {**WAIT2, "status_changed_at": NOW - 12 * D}, 7,
     "overdue", "Waiting 12 days", "attention", 3),
    ("overdue-from-created-at-when-never-moved", {**WAIT1, "created_at": NOW - 10 * D, "updated_at": NOW}, 7,
     "overdue", "Waiting 10 days", "attention", 3),
    ("status-change-not-creation", {**WAIT1, "created_at": NOW - 30 * D, "status_changed_at": NOW - 2 * D,
     "updated_at": NOW - 40 * D}, 7, "waiting", "Waiting 2 days", "muted", REST),
    ("cohort-allows-14-days", {**WAIT1, "status_changed_at": NOW - 12 * D}, 14,
     "waiting", "Waiting 12 days", "muted", REST),
    ("wrong-round-first-while-waiting-for-second", {**WAIT2, "interview_booking_uid": "b1", "interview_round": 1,
     "interview_start": NOW + 2 * D}, 7, "wrong_round",
     "Booked the first-round interview while waiting for round 2", "attention", 2),
    ("wrong-round-second-while-waiting-for-first", {**WAIT1, "interview_booking_uid": "b1", "interview_round": 2}, 7,
     "wrong_round", "Booked the second-round interview while waiting for round 1", "attention", 2),
    ("right-round-booked-while-waiting-is-not-flagged", {**WAIT1, "interview_booking_uid": "b1",
     "interview_round": 1, "status_changed_at": NOW - D}, 7, "waiting", "Waiting 1 day", "muted", REST),
    ("not-invited", {**WAIT1, "status_changed_at": NOW - 2 * D, "invite_round_ready": True}, 7,
     "not_invited", "Not invited", "warning", REST),
    ("invited-3-days-ago-reminded-once", {**WAIT1, "status_changed_at": NOW - 4 * D, "invite_round_ready": True,
     "invited_at": NOW - 3 * D - H, "reminders_sent": 1}, 7,
     "invited", "Invited 3 days ago (reminded 1×)", "info", REST),
    ("invited-today", {**WAIT2, "status_changed_at": NOW - 2 * H, "invite_round_ready": True,
     "invited_at": NOW - H}, 7, "invited", "Invited today", "info", REST),
    ("overdue-outranks-invited", {**WAIT1, "status_changed_at": NOW - 9 * D, "invite_round_ready": True,
     "invited_at": NOW - 8 * D, "reminders_sent": 2}, 7, "overdue", "Waiting 9 days", "attention", 3),
    ("no-invitation-state-without-a-set-up-round", {**WAIT1, "status_changed_at": NOW - D,
     "invite_round_ready": False}, 7, "waiting", "Waiting 1 day", "muted", REST),
    ("needs-first-decision", {"status": "needs_first_decision", "current_stage": "first_round"}, 7,
     "decision", "Decision due", "warning", 5),
    ("needs-final-decision", {"status": "needs_final_decision", "current_stage": "second_round"}, 7,
     "decision", "Decision due", "warning", 5),
    ("new", {"status": "new"}, 7, "none", "—", "muted", REST),
    ("accepted", {"status": "accepted", "current_stage": "decision"}, 7, "none", "—", "muted", REST),
    ("waitlist", {"status": "waitlist", "current_stage": "decision"}, 7, "none", "—", "muted", REST),
    ("declined", {"status": "declined", "current_stage": "decision"}, 7, "none", "—", "muted", REST),
    ("no-show", {**SCHED, "interview_start": NOW - 2 * H, "interview_end": NOW - H, "interview_no_show": True}, 7,
     "no_show", "No-show", "attention", 0),
    ("no-show-beats-meeting-ended", {**SCHED, "interview_start": NOW - 2 * H, "interview_ended_at": NOW - H,
     "interview_no_show": True}, 7, "no_show", "No-show", "attention", 0),
    ("no-show-mark-on-a-future-interview-waits", {**SCHED, "interview_start": NOW + 3 * H,
     "interview_no_show": True}, 7, "today", "Today 16:00", "info", REST),
]
IDS = [row[0] for row in STATES]


# What add_invitations sets on a row (not model fields).
INVITATION_ATTRIBUTES = ("invite_round_ready", "invited_at", "reminders_sent")


def build(fields):
    fields = {"created_at": NOW - 60 * D, "updated_at": NOW - D, **fields}
    extra = {name: fields.pop(name) for name in INVITATION_ATTRIBUTES if name in fields}
    application = Application(applicant_name="A", contact_email="a@example.org", **fields)
    for name, value in extra.items():
        setattr(application, name, value)
    return application


@pytest.mark.parametrize(("name", "fields", "overdue", "key", "label", "tone", "rank"), STATES, ids=IDS)
def test_pipeline_state(name, fields, overdue, key, label, tone, rank):
    state = pipeline_state(build(fields), now=NOW, overdue_days=overdue, tz=LONDON)
    assert (state.key, state.label, state.tone, state.sort_rank) == (key, label, tone, rank)
    assert state.needs_action == (rank < REST)


def test_every_filter_and_ranked_state_has_a_row():
    keys = {row[3] for row in STATES}
    assert {key for key, _ in FILTERS} - {"today", "tomorrow"} <= keys
    assert {"now", "upcoming", "waiting", "none", "invited", "not_invited"} <= keys


def test_notes_carry_the_reason_the_round_and_a_pending_new_time():
    assert pipeline_state(build(STATES[0][1]), now=NOW, overdue_days=7, tz=LONDON).note == "Chair travelling"
    assert pipeline_state(build({**WAIT2, "status_changed_at": NOW - 12 * D}), now=NOW, overdue_days=7,
                          tz=LONDON).note == "Round 2 · over 7 days"
    today = pipeline_state(build(dict(STATES[11][1])), now=NOW, overdue_days=7, tz=LONDON)
    assert today.note == "Pending confirmation of a new time"


def test_offline_interviews_say_so_in_the_note():
    fields = {**SCHED, "interview_start": NOW + 3 * H, "interview_kind": "offline", "pending_booking_uid": "p9"}
    state = pipeline_state(build(fields), now=NOW, overdue_days=7, tz=LONDON)
    assert (state.key, state.note) == ("today", "Scheduled offline · Pending confirmation of a new time")


def test_the_viewers_zone_decides_today_and_the_hour():
    fields = {**SCHED, "interview_start": NOW + 11.5 * H}  # 23:30 UTC
    assert pipeline_state(build(fields), now=NOW, overdue_days=7, tz=dt_timezone.utc).label == "Today 23:30"
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")  # already 21:00 on the 10th there: 08:30 on the 11th
    assert pipeline_state(build(fields), now=NOW, overdue_days=7, tz=tokyo).label == "Tomorrow 08:30"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "fields", "overdue", "key", "label", "tone", "rank"), STATES, ids=IDS)
def test_sql_rank_and_filters_agree_with_the_function(name, fields, overdue, key, label, tone, rank):
    fields = {k: v for k, v in fields.items() if k not in INVITATION_ATTRIBUTES}
    app = ApplicationFactory(**{"created_at": NOW - 60 * D, "updated_at": NOW - D, **fields})
    rows = with_waiting_since(Application.objects.filter(pk=app.pk))
    ranked = rows.annotate(r=rank_expression(now=NOW, overdue_days=overdue, tz=LONDON)).get()
    assert ranked.r == rank
    for filter_key, _ in FILTERS:
        kept = rows.filter(state_filter(filter_key, now=NOW, overdue_days=overdue, tz=LONDON)).exists()
        if filter_key in ("today", "tomorrow"):
            start = fields.get("interview_start")
            day = (start.astimezone(LONDON).date() - NOW.astimezone(LONDON).date()).days if start else None
            expected = (fields["status"] in SCHEDULED and not fields.get("reschedule_requested")
                        and day == {"today": 0, "tomorrow": 1}[filter_key])
        else:
            expected = filter_key == key
        assert kept == expected, filter_key


def test_invite_action_only_where_nothing_was_sent_and_the_round_is_set_up():
    def action(**fields):
        return pipeline_state(build({**WAIT1, "status_changed_at": NOW - D, **fields}), now=NOW, overdue_days=7).action

    assert action(invite_round_ready=True) == "invite"
    assert action(invite_round_ready=True, status_changed_at=NOW - 10 * D) == "invite"  # overdue too
    assert action(invite_round_ready=True, invited_at=NOW - H) == ""
    assert action(invite_round_ready=False) == ""
    overdue = pipeline_state(build({**WAIT1, "status_changed_at": NOW - 10 * D, "invite_round_ready": True}),
                             now=NOW, overdue_days=7)
    assert overdue.note == "Round 1 · over 7 days · Not invited"
