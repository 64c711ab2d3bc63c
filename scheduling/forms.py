"""Forms for the cohort's Cal.com sync settings."""

from django import forms


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
