"""The cohort settings page's forms: one per interview round, and the Cal.com API key."""

from django import forms

from . import templating
from .models import InterviewRound


class EventTypesField(forms.CharField):
    """Comma- or newline-separated Cal.com event-type slugs and numeric ids, as a JSON-ready list."""

    def to_python(self, value):
        text = super().to_python(value) or ""
        items = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
        return [int(item) if item.isdigit() else item for item in items]

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def validate(self, value):
        super().validate(value)
        for item in value:
            if isinstance(item, str) and (len(item) > 100 or any(c.isspace() for c in item)):
                raise forms.ValidationError(
                    f"“{item[:40]}” is not an event-type slug: slugs have no spaces (e.g. first-interview), "
                    "ids are digits (e.g. 1432).")


class InterviewRoundForm(forms.ModelForm):
    """Edit one InterviewRound; templates are checked in the sandbox before they can be saved."""

    event_types = EventTypesField(
        required=False, label="Event types",
        help_text="The Cal.com event-type slugs or ids that mean this round, separated by commas "
                  "(e.g. first-interview, 1432). Empty: bookings of any event type count as the round "
                  "the applicant waits for.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    class Meta:
        model = InterviewRound
        fields = ["booking_url", "event_types", "auto_invite", "remind_after_days", "max_reminders",
                  "book_within_days", "invitation_subject", "invitation_body"]
        labels = {
            "booking_url": "Booking page",
            "auto_invite": "Invite automatically when an application starts waiting for this round",
            "remind_after_days": "Remind after (days)",
            "max_reminders": "At most this many reminders",
            "book_within_days": "Deadline (days after the invitation)",
            "invitation_subject": "Invitation subject",
            "invitation_body": "Invitation text",
        }
        help_texts = {
            "booking_url": "https:// only. A Cal.com page such as https://cal.com/your-team/first-interview, "
                           "or a Calendly or Google appointment page.",
            "remind_after_days": "An applicant still waiting this many days after the last invitation or "
                                 "reminder gets a reminder. Empty: no reminders.",
            "book_within_days": "Shown as {{ deadline }}. Empty: no deadline.",
        }
        widgets = {
            "booking_url": forms.URLInput(attrs={"placeholder": "https://cal.com/your-team/first-interview"}),
            "invitation_subject": forms.TextInput(),
            "invitation_body": forms.Textarea(attrs={"rows": 14}),
            "remind_after_days": forms.NumberInput(attrs={"min": 1, "max": 60}),
            "max_reminders": forms.NumberInput(attrs={"min": 0, "max": 10}),
            "book_within_days": forms.NumberInput(attrs={"min": 1, "max": 90}),
        }

    def clean_remind_after_days(self):
        value = self.cleaned_data.get("remind_after_days")
        if value is not None and not 1 <= value <= 60:
            raise forms.ValidationError("Reminders go out between 1 and 60 days after the last email.")
        return value

    def clean_max_reminders(self):
        value = self.cleaned_data.get("max_reminders")
        if value is not None and value > 10:
            raise forms.ValidationError("At most 10 reminders: more reads as spam.")
        return value

    def clean_invitation_subject(self):
        return self._checked("invitation_subject")

    def clean_invitation_body(self):
        return self._checked("invitation_body")

    def _checked(self, name):
        source = self.cleaned_data.get(name, "")
        error = templating.check(source)
        if error:
            raise forms.ValidationError(error)
        return source

    def clean_event_types(self):
        value = self.cleaned_data.get("event_types") or []
        other = InterviewRound.objects.filter(cohort_id=self.instance.cohort_id).exclude(
            number=self.instance.number)
        listed = {str(v).lower() for r in other for v in r.event_types}
        clash = [str(v) for v in value if str(v).lower() in listed]
        if clash:
            raise forms.ValidationError(
                f"{', '.join(clash)} already belongs to the other round: a booking's event type must say "
                "which round it is.")
        return value


class ProviderSecretsForm(forms.Form):
    """The cohort's Calendly signing key and Cronofy client secret (issue 11).

    A blank field keeps the stored value (the page never shows it back in full);
    the "remove" boxes clear it, which makes that provider's webhook answer 403.
    """

    calendly_signing_key = forms.CharField(
        label="Calendly signing key", required=False, max_length=200, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The signing_key of the cohort's Calendly webhook subscription.")
    remove_calendly = forms.BooleanField(label="Remove the Calendly key", required=False)
    cronofy_client_secret = forms.CharField(
        label="Cronofy client secret", required=False, max_length=200, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The client secret of the Cronofy application whose Scheduler sends notifications.")
    remove_cronofy = forms.BooleanField(label="Remove the Cronofy secret", required=False)

    def clean(self):
        data = super().clean()
        for key, remove in (("calendly_signing_key", "remove_calendly"),
                            ("cronofy_client_secret", "remove_cronofy")):
            if data.get(key) and data.get(remove):
                self.add_error(remove, "Either paste a new value or remove it, not both.")
            if data.get(key) and any(c.isspace() for c in data[key]):
                self.add_error(key, "Keys have no spaces; paste it exactly as the provider shows it.")
        return data

    def save(self, cohort):
        """Write the changes onto `cohort`; return the names of the fields that changed."""
        changed = []
        for key, remove in (("calendly_signing_key", "remove_calendly"),
                            ("cronofy_client_secret", "remove_cronofy")):
            value = "" if self.cleaned_data[remove] else self.cleaned_data[key] or getattr(cohort, key)
            if value != getattr(cohort, key):
                setattr(cohort, key, value)
                changed.append(key)
        if changed:
            cohort.save(update_fields=changed)
        return changed


class CalcomApiKeyForm(forms.Form):
    """Enter or replace the cohort's Cal.com API key (API_V2.md §1: keys start with cal_)."""

    api_key = forms.CharField(
        label="Cal.com API key", max_length=200, strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="In Cal.com: Settings → Developer → API keys. Stored encrypted; only its last four "
                  "characters are shown again.",
    )

    def clean_api_key(self):
        key = self.cleaned_data["api_key"]
        if not key.startswith("cal_") or any(c.isspace() for c in key):
            raise forms.ValidationError("A Cal.com API key starts with “cal_” (or “cal_live_”) and has no "
                                        "spaces; copy it again from Cal.com's API keys page.")
        return key
