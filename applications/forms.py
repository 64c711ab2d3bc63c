"""Forms of the Applications tab: its filter bar, the status change and the user's settings."""

import zoneinfo
from dataclasses import dataclass

from django import forms
from django.db.models import F

from scheduling.status import Status

from .models import UserSettings

PAGE_SIZE = 50

SORTS = {
    # Each ends in the primary key so pages never shuffle rows with equal keys.
    "updated": ("Last updated", ("-updated_at", "-pk")),
    "interview": ("Interview date", (F("interview_start").asc(nulls_last=True), "pk")),
    "name": ("Name", ("applicant_name", "pk")),
}
DEFAULT_SORT = "updated"
SORT_CHOICES = [(key, label) for key, (label, _) in SORTS.items()]


@dataclass(frozen=True)
class TabFilters:
    """The tab's filters as read from the query string (`?status=…&q=…&hide_declined=…&sort=…`).

    Forgiving on purpose: an unknown status or sort in a bookmarked URL is dropped,
    not an error page.
    """

    statuses: tuple = ()
    q: str = ""
    hide_declined: bool = True
    sort: str = DEFAULT_SORT

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
        )

    @property
    def hides_declined(self):
        # Ticking the Declined chip is an explicit ask to see them, whatever the toggle says.
        return self.hide_declined and Status.DECLINED not in self.statuses

    def apply(self, applications):
        """Return `applications` filtered, searched and ordered as these filters say."""
        if self.statuses:
            applications = applications.filter(status__in=self.statuses)
        if self.hides_declined:
            applications = applications.exclude(status=Status.DECLINED)
        return applications.search(self.q).order_by(*SORTS[self.sort][1])

    def count_from(self, status_counts):
        """Return how many rows `apply` keeps, from {status: count}; None when a search makes it unknowable."""
        if self.q:
            return None
        shown = set(self.statuses or Status.values)
        if self.hides_declined:
            shown.discard(Status.DECLINED)
        return sum(n for status, n in status_counts.items() if status in shown)


class StatusChangeForm(forms.Form):
    """Move an application to one of the statuses the transition table allows next."""

    status = forms.ChoiceField(label="Move to")
    note = forms.CharField(label="Note (optional)", required=False, max_length=500)
    # The status the admin saw: if it changed meanwhile, the move is refused, not guessed.
    current = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, application, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.application = application
        self.fields["status"].choices = [(s.value, s.label) for s in application.allowed_statuses()]
        self.fields["current"].initial = application.status

    def clean_current(self):
        current = self.cleaned_data["current"]
        if current != self.application.status:
            raise forms.ValidationError(
                "This application changed while you were looking: it is now "
                f"“{self.application.status_label}”. Check the timeline and try again."
            )
        return current


def time_zone_choices():
    """Return the select's choices: the organization default, then every IANA zone."""
    return [("", "My organization's time zone")] + [
        (name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())
    ]


class UserSettingsForm(forms.ModelForm):
    """The user's settings page: the time zone dates are shown in."""

    time_zone = forms.ChoiceField(label="Time zone for dates", required=False, choices=time_zone_choices)

    class Meta:
        model = UserSettings
        fields = ["time_zone"]
