"""The application status state machine: statuses, allowed transitions, stages.

Pure Python (no models), so `applications.models` can import it. This module is
the only place that knows which status may follow which; `Application.move_to`
is the only writer of `Application.status` and asks `check_transition` first.
"""

from django.db import models


class Status(models.TextChoices):
    NEW = "new", "New"
    WAITING_FIRST_ROUND = "waiting_first_round", "Waiting for first round"
    FIRST_ROUND_SCHEDULED = "first_round_scheduled", "First round scheduled"
    NEEDS_FIRST_DECISION = "needs_first_decision", "Needs first decision"
    WAITING_SECOND_ROUND = "waiting_second_round", "Waiting for second round"
    SECOND_ROUND_SCHEDULED = "second_round_scheduled", "Second round scheduled"
    NEEDS_FINAL_DECISION = "needs_final_decision", "Needs final decision"
    ACCEPTED = "accepted", "Accepted"
    WAITLIST = "waitlist", "Waitlist"
    DECLINED = "declined", "Declined"


class Stage(models.TextChoices):
    INTAKE = "intake", "Intake"
    FIRST_ROUND = "first_round", "First round"
    SECOND_ROUND = "second_round", "Second round"
    DECISION = "decision", "Decision"


S = Status

NEXT = {
    S.NEW: {S.WAITING_FIRST_ROUND, S.FIRST_ROUND_SCHEDULED, S.DECLINED},
    S.WAITING_FIRST_ROUND: {S.FIRST_ROUND_SCHEDULED, S.DECLINED},
    S.FIRST_ROUND_SCHEDULED: {S.WAITING_FIRST_ROUND, S.NEEDS_FIRST_DECISION, S.DECLINED},
    S.NEEDS_FIRST_DECISION: {S.WAITING_SECOND_ROUND, S.ACCEPTED, S.WAITLIST, S.DECLINED},
    S.WAITING_SECOND_ROUND: {S.SECOND_ROUND_SCHEDULED, S.DECLINED},
    S.SECOND_ROUND_SCHEDULED: {S.WAITING_SECOND_ROUND, S.NEEDS_FINAL_DECISION, S.DECLINED},
    S.NEEDS_FINAL_DECISION: {S.ACCEPTED, S.WAITLIST, S.DECLINED},
    S.WAITLIST: {S.ACCEPTED, S.DECLINED},
    S.ACCEPTED: set(),
    S.DECLINED: set(),
}

STAGE = {
    S.NEW: Stage.INTAKE,
    S.WAITING_FIRST_ROUND: Stage.FIRST_ROUND,
    S.FIRST_ROUND_SCHEDULED: Stage.FIRST_ROUND,
    S.NEEDS_FIRST_DECISION: Stage.FIRST_ROUND,
    S.WAITING_SECOND_ROUND: Stage.SECOND_ROUND,
    S.SECOND_ROUND_SCHEDULED: Stage.SECOND_ROUND,
    S.NEEDS_FINAL_DECISION: Stage.SECOND_ROUND,
    S.ACCEPTED: Stage.DECISION,
    S.WAITLIST: Stage.DECISION,
    S.DECLINED: Stage.DECISION,
}

TERMINAL = frozenset(status for status, allowed in NEXT.items() if not allowed)
# Statuses a booking can never move, even though two of them still have transitions.
CLOSED = frozenset({S.ACCEPTED, S.WAITLIST, S.DECLINED})
WAITING = frozenset({S.WAITING_FIRST_ROUND, S.WAITING_SECOND_ROUND})
SCHEDULED = frozenset({S.FIRST_ROUND_SCHEDULED, S.SECOND_ROUND_SCHEDULED})

# Reopening a decision: an org admin's explicit way out of a closed status, always with a
# reason. The way back leads to a status the decision could have been taken from, never to a
# `*_scheduled` one (a schedule only comes from a booking) and never to another closed one.
REOPEN = {
    closed: frozenset(
        old for old, allowed in NEXT.items()
        if closed in allowed and old not in CLOSED and old not in SCHEDULED
    )
    for closed in CLOSED
}

# What a confirmed booking does to a status; statuses not listed keep theirs.
ON_BOOKING = {
    S.NEW: S.FIRST_ROUND_SCHEDULED,
    S.WAITING_FIRST_ROUND: S.FIRST_ROUND_SCHEDULED,
    S.WAITING_SECOND_ROUND: S.SECOND_ROUND_SCHEDULED,
}
# What losing the current booking (cancelled, host asked for a new time) does.
ON_CANCEL = {
    S.FIRST_ROUND_SCHEDULED: S.WAITING_FIRST_ROUND,
    S.SECOND_ROUND_SCHEDULED: S.WAITING_SECOND_ROUND,
}


def label(status):
    """Return the label people read for `status` ("Waiting for first round"), or the raw text."""
    try:
        return Status(status).label
    except ValueError:
        return str(status)


def _allowed_sentence(old):
    try:
        allowed = allowed_next(old)
    except (KeyError, ValueError):
        return ""
    if not allowed:
        return " It is a final decision: an org admin can reopen it with a reason."
    return " Allowed now: " + ", ".join(f"“{s.label}”" for s in allowed) + "."


class InvalidTransition(Exception):
    """Raised when a status change is not in `NEXT`; carries `old` and `new` (Status values).

    Its message is a sentence for people: labels, never enum reprs, and what is allowed now.
    """

    def __init__(self, old, new):
        self.old, self.new = old, new
        super().__init__(
            f"An application that is “{label(old)}” cannot move to “{label(new)}”."
            + _allowed_sentence(old)
        )


class CohortArchived(InvalidTransition):
    """Raised when an application of an archived cohort would change status: archived is read-only."""

    def __init__(self, cohort_name, old, new):
        self.old, self.new = old, new
        Exception.__init__(self, f"{cohort_name} is archived: its applications can no longer change.")


def check_transition(old, new):
    """Raise InvalidTransition unless `NEXT` allows `old` -> `new` (both Status values or strings)."""
    try:
        allowed = NEXT[Status(old)]
    except ValueError:
        raise InvalidTransition(old, new) from None
    if new not in allowed:
        raise InvalidTransition(old, new)


def check_reopen(old, new):
    """Raise InvalidTransition unless `REOPEN` lets a decision `old` be reopened to `new`."""
    try:
        allowed = REOPEN[Status(old)]
    except (KeyError, ValueError):
        raise InvalidTransition(old, new) from None
    if new not in allowed:
        raise InvalidTransition(old, new)


def reopen_choices(status):
    """Return the statuses a decision `status` may be reopened to, in declaration order."""
    allowed = REOPEN.get(Status(status), frozenset())
    return [s for s in Status if s in allowed]


def stage_for(status):
    """Return the Stage an application in `status` is at."""
    return STAGE[Status(status)]


def allowed_next(status):
    """Return the statuses `status` may move to, in declaration order (a list of Status)."""
    allowed = NEXT[Status(status)]
    return [s for s in Status if s in allowed]


def status_after_booking(status):
    """Return the status a confirmed booking moves `status` to, or None when it stays."""
    return ON_BOOKING.get(Status(status))


def status_after_cancel(status):
    """Return the status losing the current booking moves `status` to, or None when it stays."""
    return ON_CANCEL.get(Status(status))


class StatusConflict(InvalidTransition):
    """Raised when the stored status changed under us (a concurrent writer won the race)."""

    def __init__(self, old, new):
        super().__init__(old, new)
        self.args = (f"Someone changed this application first: it is no longer “{label(old)}”. "
                     "Nothing was changed.",)
