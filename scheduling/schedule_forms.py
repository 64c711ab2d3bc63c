"""Forms for interviews recorded by hand: the admin's "Schedule offline" and the applicant's "I've booked"."""

import zoneinfo
from datetime import timedelta
from functools import lru_cache

from django import forms
from django.core.validators import URLValidator
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils import timezone

from applications.models import Cohort

from .handmade import as_aware

DURATIONS = [(15, "15 minutes"), (30, "30 minutes"), (45, "45 minutes"), (60, "1 hour"),
             (90, "1 hour 30"), (120, "2 hours")]
# How far from now a reported interview may be: a typo in the year is caught, a late report is not.


class WebLinkField(forms.URLField):
    """A URL people will open: only http(s) web links, never javascript: or ftp:."""

    default_validators = [URLValidator(schemes=["http", "https"])]
    default_error_messages = {"invalid": "Enter a web link starting with https://."}

PAST_LIMIT = timedelta(days=14)
FUTURE_LIMIT = timedelta(days=366)


@lru_cache(maxsize=1)
def zone_choices():
    """Return [(IANA name, readable name)] for every zone the system knows, sorted."""
    names = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/"))
    return [("UTC", "UTC")] + [(name, name.replace("_", " ")) for name in names]


class ZoneSelect(forms.Select):
    """The time-zone <select>, rendered in one pass.

    Django renders each <option> through its own template: for ~430 zones that took
    about 100 ms of the applicant page's 150 (bench/applicant_page.py). Same markup.
    """

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        chosen = str(value[0] if isinstance(value, (list, tuple)) and value else value or "")
        options = _zone_options()
        if chosen:
            options = options.replace(f'<option value="{escape(chosen)}">',
                                      f'<option value="{escape(chosen)}" selected>', 1)
        return mark_safe(f"<select{flatatt(attrs)}>{options}</select>")


@lru_cache(maxsize=1)
def _zone_options():
    return "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in zone_choices())


class WhenForm(forms.Form):
    """Date, time and time zone, read together as one aware UTC instant (`cleaned_data["start"]`)."""

    date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    time_zone = forms.ChoiceField(label="Time zone", choices=zone_choices, widget=ZoneSelect)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["start"] = as_aware(data["date"], data["time"], data["time_zone"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        now = timezone.now()
        if data["start"] < now - PAST_LIMIT:
            self.add_error("date", "That date is more than two weeks ago. Please check the date.")
        elif data["start"] > now + FUTURE_LIMIT:
            self.add_error("date", "That date is more than a year away. Please check the year.")
        return data


class ApplicantBookedForm(WhenForm):
    """The applicant's "I've booked my interview": when, in their zone, and the meeting link if any."""

    meeting_url = WebLinkField(
        label="Meeting link (optional)", required=False, max_length=500, assume_scheme="https",
        help_text="The video link from your booking confirmation, if there is one.",
    )


class OfflineForm(WhenForm):
    """An admin's "Schedule offline": when, how long, where, and a note for the team."""

    duration = forms.TypedChoiceField(label="Duration", choices=DURATIONS, coerce=int, initial=30)
    meeting_url = WebLinkField(label="Meeting link", required=False, max_length=500,
                               assume_scheme="https")
    location = forms.CharField(label="Or location", required=False, max_length=300,
                               help_text="A room, an address or “phone call”.")
    note = forms.CharField(label="Note for the team", required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if "start" in data:
            data["end"] = data["start"] + timedelta(minutes=data["duration"])
        for name in ("location", "note"):
            if name in data:
                data[name] = data[name].replace("\x00", "").strip()
        return data


class ApplicantContactForm(forms.ModelForm):
    """The cohort's reply-to address: on invitations, and named by applicants' pages when a link fails."""

    class Meta:
        model = Cohort
        fields = ["reply_to_email"]
        labels = {"reply_to_email": "Reply-to address for applicants"}
