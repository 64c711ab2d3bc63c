"""Sign a JSON file with a cohort's webhook secret and POST it, as Cal.com would."""

import json
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

from applications.models import Cohort
from scheduling.providers import calcom


class Command(BaseCommand):
    help = (
        "Sign FILE's exact bytes with the cohort's Cal.com secret and POST them to the cohort's "
        "webhook URL on a running server (default http://127.0.0.1:8000). Prints status and outcome."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON body, e.g. ../shared/calcom/samples/calcom_booking_created.json")
        parser.add_argument("--cohort", required=True, help="The cohort's slug.")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000",
            help="Server base URL, or the full webhook URL (default http://127.0.0.1:8000).",
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait (default 30).")
        parser.add_argument(
            "--application-id", metavar="REF",
            help="Set payload.metadata.application_id, as a booking link's ?metadata[application_id]= would "
                 "(e.g. a ref copied from an application page).",
        )
        parser.add_argument("--email", help="Set the booker's email (responses.email and attendees[0]).")

    def handle(self, *args, file, cohort, url, timeout, application_id=None, email=None, **options):
        try:
            body = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        if application_id is not None or email is not None:
            body = _edited(body, file, application_id, email)
        found = Cohort.objects.filter(slug=cohort).first()
        if found is None:
            known = ", ".join(Cohort.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No cohort with slug {cohort!r} (known: {known}).")
        target = url if "/webhooks/" in url else url.rstrip("/") + found.webhook_path()
        try:
            response = requests.post(
                target, data=body, timeout=timeout, allow_redirects=False,
                headers={
                    "Content-Type": "application/json",
                    calcom.SIGNATURE_HEADER: calcom.sign(body, found.webhook_secret),
                    "X-Cal-Webhook-Version": "2021-10-20",
                },
            )
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


def _edited(body, file, application_id, email):
    """Return `body` (a Cal.com JSON body) with its ref and/or booker's email replaced, re-encoded."""
    try:
        data = json.loads(body)
        payload = data["payload"]
    except (ValueError, KeyError, TypeError):
        raise CommandError(f"{file} is not a Cal.com webhook body with a payload.") from None
    if application_id is not None:
        metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        payload["metadata"] = {**metadata, "application_id": application_id}
    if email is not None:
        if isinstance(payload.get("responses", {}).get("email"), dict):
            payload["responses"]["email"]["value"] = email
        for attendee in payload.get("attendees", [])[:1]:
            attendee["email"] = email
    # Compact, as Cal.com's JSON.stringify sends it.
    return json.dumps(data, separators=(",", ":")).encode()
