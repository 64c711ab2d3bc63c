"""The Pipeline column: what an application needs next, decided in one place.

`pipeline_state` decides a row's state for the tab, the CSV export and the home
page; templates only render the PipelineState it returns. `rank_expression` and
`state_filter` say the same in SQL, so "Needs action first" sorts and the
home page's links filter in the database and pagination stays right; a test
checks the SQL and the function agree on every row of the state table.

Adding a state is one branch in `pipeline_state` (in precedence order) plus one
row in tests/test_pipeline.py's table; if it should sort before the rest or be
filterable, one entry in `_RULES` too.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from scheduling.status import SCHEDULED, WAITING, Stage, Status

from .models import Application

# An interview without an end time is taken to last this long (Cal.com always sends one;
# rows edited by hand may not have it).
DEFAULT_LENGTH = timedelta(hours=1)
DECISION = frozenset({Status.NEEDS_FIRST_DECISION, Status.NEEDS_FINAL_DECISION})

# "Needs action first": lower ranks sort first; every other state is REST.
RANK = {
    "no_show": 0,      # the applicant missed the interview: an admin decides what follows
    "held": 0,         # the interview took place, the status still says scheduled
    "reschedule": 1,   # the host asked the applicant for a new time
    "wrong_round": 2,  # booked the other round's event type while waiting (status left as it was)
    "overdue": 3,      # waiting for an interview longer than the cohort's overdue_days
    "pending": 4,      # a booking waits for the host's confirmation
    "unverified": 4,   # the applicant says they booked; an admin should confirm (issue 9)
    "decision": 5,     # needs a first or final decision
}
REST = 9
INTERVIEW_KEYS = frozenset({"held", "now", "today", "tomorrow", "upcoming"})

# What the filter bar's Pipeline select and the home page's links can filter on.
FILTERS = [
    ("no_show", "No-show"),
    ("held", "Held, needs decision"),
    ("reschedule", "Reschedule requested"),
    ("wrong_round", "Booked the wrong round"),
    ("overdue", "Waiting too long"),
    ("pending", "Pending confirmation"),
    ("unverified", "Applicant says booked, unverified"),
    ("decision", "Decision due"),
    ("today", "Interview today"),
    ("tomorrow", "Interview tomorrow"),
]


@dataclass(frozen=True)
class PipelineState:
    """One row's Pipeline state.

    `key`: a stable name ("held", "today", "overdue", …); `label`: the short text
    people read ("Today 14:00", "Waiting 12 days"); `tone`: "attention",
    "warning", "info", "ok" or "muted" (a CSS class; the label never relies on
    it); `sort_rank`: its place in "Needs action first" (RANK, else REST); `at`:
    the aware datetime the label is about, if any; `note`: a second line (the
    host's reason, the round); `action`: "invite" when the row offers a Send
    invitation button; `needs_action`: True when it ranks before the rest.
    """

    key: str
    label: str
    tone: str
    sort_rank: int = REST
    at: datetime | None = None
    note: str = ""
    action: str = ""

    @property
    def needs_action(self):
        return self.sort_rank < REST

    @property
    def is_interview(self):
        """Return True when the state is about the current interview (its time is worth showing)."""
        return self.key in INTERVIEW_KEYS


def _state(key, label, tone, **extra):
    return PipelineState(key, label, tone, RANK.get(key, REST), **extra)


def _round_note(application):
    number = {Stage.FIRST_ROUND: "1", Stage.SECOND_ROUND: "2"}.get(application.current_stage)
    return f"Round {number}" if number else ""


def _ago(now, then):
    days = max((now - then).days, 0)
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"


def pipeline_state(application, *, now, overdue_days, tz=None):
    """Return the PipelineState of `application` at `now`.

    `now` is an aware datetime; `overdue_days` (int) is the cohort's
    `overdue_days`; `tz` (a tzinfo, default the active time zone) is the viewer's,
    for "Today 14:00" and "Tomorrow 09:30". Reads only the application's own
    fields and what `add_invitations` set on it (`invite_round_ready`,
    `invited_at`, `reminders_sent`; without them, invitations are not shown), so a
    page of rows costs no queries. Raises nothing.
    """
    a = application
    tz = tz or timezone.get_current_timezone()
    if a.reschedule_requested:
        return _state("reschedule", "Reschedule requested", "attention", note=a.reschedule_reason)
    if a.status in SCHEDULED and a.interview_start:
        start = a.interview_start
        end = a.interview_end or start + DEFAULT_LENGTH
        if a.interview_no_show and start <= now:
            # Marked by the host or Cal Video (issue 11); the status is the admin's to move.
            return _state("no_show", "No-show", "attention", at=start, note=_round_note(a))
        if a.interview_ended_at or end <= now:
            return _state("held", "Held, needs decision", "attention", at=a.interview_ended_at or end,
                          note=_round_note(a))
        local = start.astimezone(tz)
        if a.interview_unverified:
            return _state("unverified", f"Applicant says booked: {local:%a} {local.day} {local:%b %H:%M}, "
                          "unverified", "warning", at=start, note="Confirm it on the application")
        offline = "Scheduled offline" if a.interview_kind == "offline" else ""
        if start <= now:
            return _state("now", "Now", "ok", at=start,
                          note=" · ".join(filter(None, ["Interview in progress", offline])))
        note = " · ".join(filter(None, [
            offline, "Pending confirmation of a new time" if a.pending_booking_uid else ""]))
        days = (local.date() - now.astimezone(tz).date()).days
        if days == 0:
            return _state("today", f"Today {local:%H:%M}", "info", at=start, note=note)
        if days == 1:
            return _state("tomorrow", f"Tomorrow {local:%H:%M}", "info", at=start, note=note)
        return _state("upcoming", f"in {days} days", "info", at=start, note=note)
    waited = a.round if a.status in WAITING else None
    if waited and a.interview_booking_uid and a.interview_round and a.interview_round != waited:
        booked = {1: "first", 2: "second"}.get(a.interview_round, str(a.interview_round))
        return _state("wrong_round", f"Booked the {booked}-round interview while waiting for round {waited}",
                      "attention", at=a.interview_start, note="Status left as it was: move it or ask for a new booking")
    if a.pending_booking_uid:
        return _state("pending", "Pending confirmation", "warning", at=a.pending_start)
    if a.status in WAITING:
        since = a.status_changed_at or a.created_at
        days = max((now - since).days, 0)
        label = "Waiting since today" if days == 0 else f"Waiting {days} day{'s' if days != 1 else ''}"
        # Invitations (issue 8): shown only where the round is set up, so they can be sent.
        invites = getattr(a, "invite_round_ready", False)
        invited_at = getattr(a, "invited_at", None)
        reminded = getattr(a, "reminders_sent", 0)
        invited = ""
        if invites and invited_at:
            invited = f"Invited {_ago(now, invited_at)}" + (f" (reminded {reminded}×)" if reminded else "")
        action = "invite" if invites and not invited_at else ""
        if now - since >= timedelta(days=overdue_days):
            extra = invited or ("Not invited" if invites else "")
            return _state("overdue", label, "attention", at=since, action=action,
                          note=" · ".join(filter(None, [_round_note(a), f"over {overdue_days} days", extra])))
        if invited:
            return _state("invited", invited, "info", at=invited_at,
                          note=" · ".join(filter(None, [label, _round_note(a)])))
        if invites:
            return _state("not_invited", "Not invited", "warning", action=action,
                          note=" · ".join(filter(None, [label, _round_note(a)])))
        return _state("waiting", label, "muted", at=since, note=_round_note(a))
    if a.status in DECISION:
        return _state("decision", "Decision due", "warning")
    return _state("none", "—", "muted")


# --- the same rules in SQL -------------------------------------------------------------


def _day(tz, now, offset):
    """Return [start, end) of the day `offset` days after `now`'s day in `tz` (aware datetimes)."""
    local = now.astimezone(tz).date() + timedelta(days=offset)
    start = datetime(local.year, local.month, local.day, tzinfo=tz)
    return start, start + timedelta(days=1)


def _rules(now, overdue_days, tz):
    """Return [(key, Q)] in `pipeline_state`'s precedence order: a row is in the first rule whose
    Q holds (each Q alone may also hold for rows an earlier rule took)."""
    scheduled = Q(status__in=SCHEDULED, interview_start__isnull=False)
    held = scheduled & (
        Q(interview_ended_at__isnull=False) | Q(interview_end__lte=now)
        | Q(interview_end__isnull=True, interview_start__lte=now - DEFAULT_LENGTH)
    )
    today, tomorrow = _day(tz, now, 0), _day(tz, now, 1)
    return [
        ("reschedule", Q(reschedule_requested=True)),
        ("no_show", scheduled & Q(interview_no_show=True, interview_start__lte=now)),
        ("held", held),
        ("unverified", scheduled & Q(interview_unverified=True)),
        ("today", scheduled & Q(interview_start__gte=today[0], interview_start__lt=today[1])),
        ("tomorrow", scheduled & Q(interview_start__gte=tomorrow[0], interview_start__lt=tomorrow[1])),
        ("scheduled", scheduled),
        ("wrong_round", ~Q(interview_booking_uid="") & (
            Q(status=Status.WAITING_FIRST_ROUND, interview_round=2)
            | Q(status=Status.WAITING_SECOND_ROUND, interview_round=1))),
        ("pending", ~Q(pending_booking_uid="")),
        ("overdue", Q(status__in=WAITING, waiting_since__lte=now - timedelta(days=overdue_days))),
        ("decision", Q(status__in=DECISION)),
    ]


def with_waiting_since(applications):
    """Annotate `waiting_since` (status_changed_at, else created_at) for `_rules`' overdue rule."""
    return applications.annotate(waiting_since=Coalesce(F("status_changed_at"), F("created_at")))


def rank_expression(*, now, overdue_days, tz=None):
    """Return a SQL expression giving each row the `sort_rank` `pipeline_state` would give it.

    Needs the `waiting_since` annotation (with_waiting_since). `now`, `overdue_days`
    and `tz` as for pipeline_state.
    """
    tz = tz or timezone.get_current_timezone()
    # "today" and "tomorrow" are subsets of "scheduled", which ranks the same: skip them, as every
    # condition here is evaluated for every row of the cohort.
    whens = [When(q, then=Value(RANK.get(key, REST))) for key, q in _rules(now, overdue_days, tz)
             if key not in ("today", "tomorrow")]
    return Case(*whens, default=Value(REST), output_field=IntegerField())


def state_filter(key, *, now, overdue_days, tz=None):
    """Return a Q keeping the rows whose state `pipeline_state` says is `key` (a FILTERS key).

    "today" and "tomorrow" keep every interview starting that day in `tz`, held or not.
    Needs the `waiting_since` annotation. Raises KeyError for an unknown key.
    """
    tz = tz or timezone.get_current_timezone()
    rules = _rules(now, overdue_days, tz)
    names = [name for name, _ in rules]
    if key in ("today", "tomorrow"):
        return ~rules[0][1] & dict(rules)[key]
    q = dict(rules)[key]
    for name, earlier in rules[: names.index(key)]:
        if name in ("today", "tomorrow"):
            continue  # subsets of "scheduled", which is listed too
        q &= ~earlier
    return q


# --- invitations on a page of rows (issue 8) ----------------------------------------------


def add_invitations(applications, cohort):
    """Set `invite_round_ready`, `invited_at` and `reminders_sent` on each of `applications`.

    `applications` is a list (a page of rows) of `cohort`. For a waiting row,
    `invite_round_ready` says its round is set up (so invitations can be sent),
    `invited_at` is when its first invitation since it entered the status was
    sent (or queued; None: never), `reminders_sent` how many reminders were sent
    since. At most two queries whatever the number of rows: the cohort's rounds
    (kept on the cohort as `_interview_rounds`, {number: InterviewRound}, which the
    rows' booking links reuse) and, when a waiting row's round is set up, its
    invitations. Reads scheduling's rows through the reverse relations, so this app
    imports none of scheduling's modules.
    """
    if getattr(cohort, "_interview_rounds", None) is None:
        cohort._interview_rounds = {r.number: r for r in cohort.rounds.all()}
    ready = set(cohort._interview_rounds)
    waiting = [a for a in applications if a.status in WAITING and a.round in ready]
    for a in applications:
        a.invite_round_ready, a.invited_at, a.reminders_sent = False, None, 0
    if not waiting:
        return applications
    invitation_model = Application._meta.get_field("invitations").related_model
    rows = invitation_model.objects.filter(application__in=[a.pk for a in waiting]).values_list(
        "application_id", "round", "kind", "state", "created_at", "sent_at")
    by_application = {}
    for row in rows:
        by_application.setdefault(row[0], []).append(row)
    for a in waiting:
        a.invite_round_ready = True
        entered = a.status_changed_at
        mine = [r for r in by_application.get(a.pk, []) if r[1] == a.round and (entered is None or r[4] >= entered)]
        firsts = [r[5] or r[4] for r in mine if r[2] == "invitation"]
        a.invited_at = min(firsts) if firsts else None
        a.reminders_sent = sum(1 for r in mine if r[2] == "reminder" and r[3] == "sent")
    return applications
