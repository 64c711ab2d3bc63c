import itertools

import pytest

from applications.models import StatusChange
from scheduling.status import (NEXT, STAGE, InvalidTransition, Stage, Status, StatusConflict,
                               status_after_booking, status_after_cancel)

from .factories import ApplicationFactory, UserFactory

ALL_PAIRS = list(itertools.product(Status, Status))


def test_table_matches_the_product_spec():
    s = Status
    assert NEXT[s.NEW] == {s.WAITING_FIRST_ROUND, s.FIRST_ROUND_SCHEDULED, s.DECLINED}
    assert NEXT[s.WAITING_FIRST_ROUND] == {s.FIRST_ROUND_SCHEDULED, s.DECLINED}
    assert NEXT[s.FIRST_ROUND_SCHEDULED] == {s.WAITING_FIRST_ROUND, s.NEEDS_FIRST_DECISION, s.DECLINED}
    assert NEXT[s.NEEDS_FIRST_DECISION] == {s.WAITING_SECOND_ROUND, s.ACCEPTED, s.WAITLIST, s.DECLINED}
    assert NEXT[s.WAITING_SECOND_ROUND] == {s.SECOND_ROUND_SCHEDULED, s.DECLINED}
    assert NEXT[s.SECOND_ROUND_SCHEDULED] == {s.WAITING_SECOND_ROUND, s.NEEDS_FINAL_DECISION, s.DECLINED}
    assert NEXT[s.NEEDS_FINAL_DECISION] == {s.ACCEPTED, s.WAITLIST, s.DECLINED}
    assert NEXT[s.WAITLIST] == {s.ACCEPTED, s.DECLINED}
    assert NEXT[s.ACCEPTED] == set() and NEXT[s.DECLINED] == set()


def test_every_status_has_a_stage():
    assert set(STAGE) == set(Status)
    assert STAGE[Status.NEW] == Stage.INTAKE
    assert STAGE[Status.SECOND_ROUND_SCHEDULED] == Stage.SECOND_ROUND
    assert STAGE[Status.WAITLIST] == Stage.DECISION


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=[f"{o.value}->{n.value}" for o, n in ALL_PAIRS])
def test_move_to_allows_exactly_the_table(old, new):
    application = ApplicationFactory(status=old)
    user = UserFactory()
    if new in NEXT[old]:
        change = application.move_to(new, user=user)
        application.refresh_from_db()
        assert application.status == new
        assert application.current_stage == STAGE[new]
        assert (change.old_status, change.new_status, change.user) == (old, new, user)
        assert StatusChange.objects.filter(application=application).count() == 1
    else:
        with pytest.raises(InvalidTransition) as raised:
            application.move_to(new, user=user)
        assert (raised.value.old, raised.value.new) == (old, new)
        application.refresh_from_db()
        assert application.status == old
        assert not StatusChange.objects.filter(application=application).exists()


@pytest.mark.django_db
def test_move_to_refuses_when_another_writer_changed_the_status_first():
    application = ApplicationFactory(status=Status.WAITING_FIRST_ROUND)
    stale = type(application).objects.get(pk=application.pk)
    application.move_to(Status.DECLINED)
    with pytest.raises(StatusConflict):
        stale.move_to(Status.FIRST_ROUND_SCHEDULED)
    application.refresh_from_db()
    assert application.status == Status.DECLINED


def test_booking_effects_only_touch_waiting_and_scheduled_statuses():
    assert status_after_booking(Status.NEW) == Status.FIRST_ROUND_SCHEDULED
    assert status_after_booking(Status.WAITING_FIRST_ROUND) == Status.FIRST_ROUND_SCHEDULED
    assert status_after_booking(Status.WAITING_SECOND_ROUND) == Status.SECOND_ROUND_SCHEDULED
    assert status_after_cancel(Status.FIRST_ROUND_SCHEDULED) == Status.WAITING_FIRST_ROUND
    assert status_after_cancel(Status.SECOND_ROUND_SCHEDULED) == Status.WAITING_SECOND_ROUND
    for status in (Status.ACCEPTED, Status.WAITLIST, Status.DECLINED, Status.NEEDS_FIRST_DECISION):
        assert status_after_booking(status) is None
        assert status_after_cancel(status) is None
    # Every effect is itself an allowed transition: no rule writes around the table.
    for table in ({s: status_after_booking(s) for s in Status}, {s: status_after_cancel(s) for s in Status}):
        for old, new in table.items():
            assert new is None or new in NEXT[old]
