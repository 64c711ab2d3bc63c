"""Sign a JSON file the way its provider would (Cal.com, Calendly or Cronofy) and POST it."""

from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

from applications.models import Cohort
from scheduling.providers import calcom, calendly, cronofy


def signed_headers(provider, body, cohort):
    """Return the headers `provider` sends with `body` (bytes), signed with `cohort`'s key for it.

    Raises CommandError when the cohort has no key for that provider (its deliveries
    would be refused anyway).
    """
    if provider == "calcom":
        return {calcom.SIGNATURE_HEADER: calcom.sign(body, cohort.webhook_secret),
                "X-Cal-Webhook-Version": "2021-10-20"}
    if provider == "calendly":
        if not cohort.calendly_signing_key:
            raise CommandError(f"Cohort {cohort.slug!r} has no Calendly signing key: set it on the "
                               "cohort's settings page first.")
        return {calendly.SIGNATURE_HEADER: calendly.sign(body, cohort.calendly_signing_key)}
    if not cohort.cronofy_client_secret:
        raise CommandError(f"Cohort {cohort.slug!r} has no Cronofy client secret: set it on the "
                           "cohort's settings page first.")
    return {cronofy.SIGNATURE_HEADER: cronofy.sign(body, cohort.cronofy_client_secret)}


class Command(BaseCommand):
    help = (
        "Sign FILE's exact bytes as PROVIDER does (Cal.com: X-Cal-Signature-256 with the cohort's "
        "secret; Calendly: Calendly-Webhook-Signature t=…,v1=… with its signing key; Cronofy: "
        "Cronofy-HMAC-SHA256 with its client secret) and POST them to the cohort's webhook URL for "
        "that provider on a running server (default http://127.0.0.1:8000). Prints status and outcome."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON body, e.g. ../shared/calcom/samples/calcom_booking_created.json")
        parser.add_argument("--cohort", required=True, help="The cohort's slug.")
        parser.add_argument("--provider", choices=["calcom", "calendly", "cronofy"], default="calcom",
                            help="Who the body claims to come from (default calcom).")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000",
            help="Server base URL, or the full webhook URL (default http://127.0.0.1:8000).",
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait (default 30).")

    def handle(self, *args, file, cohort, provider, url, timeout, **options):
        try:
            body = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        found = Cohort.objects.filter(slug=cohort).first()
        if found is None:
            known = ", ".join(Cohort.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No cohort with slug {cohort!r} (known: {known}).")
        target = url if "/webhooks/" in url else url.rstrip("/") + found.webhook_path(provider)
        headers = {"Content-Type": "application/json", **signed_headers(provider, body, found)}
        try:
            response = requests.post(target, data=body, timeout=timeout, allow_redirects=False,
                                     headers=headers)
        except requests.RequestException as exc:
            raise CommandError(f"POST {target} failed: {exc}. Is the server running?") from None
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text[:300]}
        line = f"{response.status_code} {data.get('outcome') or data.get('error', '')}"
        if data.get("detail"):
            line += f": {data['detail']}"
        if data.get("delivery"):
            line += f" (delivery #{data['delivery']})"
        self.stdout.write(line)
        if response.status_code >= 400:
            raise CommandError(f"The server answered {response.status_code}.")
