"""Forms of the Applications tab: its filter bar, the status change and the user's settings."""

import zoneinfo
from dataclasses import dataclass

from django import forms
from django.db.models import F

from scheduling.status import CLOSED, Status, label

from . import pipeline
from .models import UserSettings

PAGE_SIZE = 50

SORTS = {
    # Each ends in the primary key so pages never shuffle rows with equal keys. "action" sorts
    # on `pipeline_rank`, which TabFilters.apply annotates (pipeline.rank_expression).
    "action": ("Needs action first", (
        "pipeline_rank", F("interview_start").asc(nulls_last=True), "waiting_since", "pk",
    )),
    "updated": ("Last updated", ("-updated_at", "-pk")),
    "interview": ("Interview date", (F("interview_start").asc(nulls_last=True), "pk")),
    "name": ("Name", ("applicant_name", "pk")),
}
DEFAULT_SORT = "action"
PIPELINE_KEYS = {key for key, _ in pipeline.FILTERS}
SORT_CHOICES = [(key, label) for key, (label, _) in SORTS.items()]


@dataclass(frozen=True)
class TabFilters:
    """The tab's filters as read from the query string
    (`?status=…&q=…&hide_declined=…&sort=…&pipeline=…`).

    Forgiving on purpose: an unknown status or sort in a bookmarked URL is dropped,
    not an error page.
    """

    statuses: tuple = ()
    q: str = ""
    hide_declined: bool = True
    sort: str = DEFAULT_SORT
    pipeline: str = ""  # a pipeline.FILTERS key: only rows in that Pipeline state

    @classmethod
    def from_query(cls, query):
        """Return the filters in `query` (a QueryDict), with defaults for what is missing."""
        known = set(Status.values)
        statuses = tuple(dict.fromkeys(s for s in query.getlist("status") if s in known))
        # The form sends a hidden hide_declined=0 before the checkbox's 1, so an
        # unticked box still says "0"; no value at all means a fresh visit: hide.
        hide = query.getlist("hide_declined")
        sort = query.get("sort", DEFAULT_SORT)
        return cls(
            statuses=statuses,
            # PostgreSQL text cannot hold NUL: a pasted one must not turn a search into a 500.
            q=query.get("q", "").replace("\x00", "").strip()[:200],
            hide_declined=not hide or "1" in hide,
            sort=sort if sort in SORTS else DEFAULT_SORT,
            pipeline=query.get("pipeline", "") if query.get("pipeline", "") in PIPELINE_KEYS else "",
        )

    @property
    def hides_declined(self):
        # Ticking the Declined chip is an explicit ask to see them, whatever the toggle says.
        return self.hide_declined and Status.DECLINED not in self.statuses

    def apply(self, applications, *, now, overdue_days, tz):
        """Return `applications` filtered, searched and ordered as these filters say.

        `now` (aware), `overdue_days` (the cohort's) and `tz` (the viewer's zone) decide
        the Pipeline state in SQL (pipeline.rank_expression, pipeline.state_filter).
        """
        applications = pipeline.with_waiting_since(applications)
        if self.statuses:
            applications = applications.filter(status__in=self.statuses)
        if self.hides_declined:
            applications = applications.exclude(status=Status.DECLINED)
        if self.pipeline:
            applications = applications.filter(
                pipeline.state_filter(self.pipeline, now=now, overdue_days=overdue_days, tz=tz)
            )
        if self.sort == "action":
            applications = applications.annotate(
                pipeline_rank=pipeline.rank_expression(now=now, overdue_days=overdue_days, tz=tz)
            )
        return applications.search(self.q).order_by(*SORTS[self.sort][1])

    def count_from(self, status_counts):
        """Return how many rows `apply` keeps, from {status: count}; None when a search or the
        Pipeline filter makes it unknowable."""
        if self.q or self.pipeline:
            return None
        shown = set(self.statuses or Status.values)
        if self.hides_declined:
            shown.discard(Status.DECLINED)
        return sum(n for status, n in status_counts.items() if status in shown)


def _allowed_now(statuses):
    return ", ".join(f"“{s.label}”" for s in statuses) or "none"


class StatusChangeForm(forms.Form):
    """Move an application to one of the statuses the transition table allows next.

    Starts on "Choose…", never on the first allowed status. A decision (Accepted,
    Waitlist, Declined) needs `confirm`: the first post asks, the second moves.
    Every error is one sentence saying what happened and what is allowed now.
    """

    status = forms.ChoiceField(label="Move to")
    note = forms.CharField(label="Note (optional)", required=False, max_length=500)
    # The status the admin saw: if it changed meanwhile, the move is refused, not guessed.
    current = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, application, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.application = application
        allowed = application.allowed_statuses()
        field = self.fields["status"]
        field.choices = [("", "Choose…")] + [(s.value, s.label) for s in allowed]
        field.error_messages = {
            "required": "Choose the status to move to.",
            "invalid_choice": (
                f"That status is not possible from “{application.status_label}”. "
                f"Allowed now: {_allowed_now(allowed)}."
            ),
        }
        self.fields["current"].initial = application.status

    def clean_current(self):
        current = self.cleaned_data["current"]
        if current != self.application.status:
            raise forms.ValidationError(
                f"This application changed while you were looking: it is now "
                f"“{self.application.status_label}”, so nothing was changed. "
                f"Allowed now: {_allowed_now(self.application.allowed_statuses())}."
            )
        return current

    @property
    def needs_confirmation(self):
        """Return True when the valid form asks for a decision that was not confirmed yet."""
        return self.cleaned_data.get("status") in CLOSED and not self.cleaned_data.get("confirm")


class ReopenForm(forms.Form):
    """An org admin reopens a decision: to which status, and why (required)."""

    status = forms.ChoiceField(label="Reopen to")
    reason = forms.CharField(
        label="Reason", max_length=480, widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the decision is reopened; the timeline records it."},
    )
    current = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, application, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.application = application
        allowed = application.reopen_statuses()
        field = self.fields["status"]
        field.choices = [("", "Choose…")] + [(s.value, s.label) for s in allowed]
        field.initial = application.reopen_default() if not self.is_bound else None
        field.error_messages = {
            "required": "Choose the status to reopen to.",
            "invalid_choice": (
                f"“{application.status_label}” cannot be reopened to that status. "
                f"Allowed: {_allowed_now(allowed)}."
            ),
        }
        self.fields["current"].initial = application.status

    def clean_current(self):
        current = self.cleaned_data["current"]
        if current != self.application.status:
            raise forms.ValidationError(
                f"This application changed while you were looking: it is now "
                f"“{label(self.application.status)}”, so nothing was reopened."
            )
        return current


def time_zone_choices():
    """Return the select's choices: the organization default, then every IANA zone."""
    return [("", "My organization's time zone")] + [
        (name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())
    ]


class UserSettingsForm(forms.ModelForm):
    """The user's settings page: the time zone dates are shown in."""

    time_zone = forms.ChoiceField(
        label="Time zone for dates", required=False, choices=time_zone_choices,
        error_messages={"invalid_choice": "“%(value)s” is not a time zone we know: pick one from the list."},
    )

    class Meta:
        model = UserSettings
        fields = ["time_zone"]
