"""Sign a JSON file the way its provider would (Cal.com, Calendly or Cronofy) and POST it."""

import json
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

from applications.models import Cohort
from scheduling.links import make_ref
from scheduling.providers import calcom, calendly, cronofy
from scheduling.rounds import round_waited_for


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
        parser.add_argument(
            "--application-id", metavar="REF",
            help="Set the booking link's reference, as the link would: Cal.com's "
                 "payload.metadata.application_id, Calendly's tracking.utm_content, Cronofy's "
                 "correlation_id (e.g. a ref copied from an application page).",
        )
        parser.add_argument(
            "--link-of", metavar="PUBLIC_ID",
            help="Set the booking link's reference (as --application-id) to the signed ref of this "
                 "application's bound link (the round it waits for), as a booking through it would carry.",
        )
        parser.add_argument("--email", help="Set the booker's email (Cal.com: responses.email and "
                                            "attendees[0]; Calendly: payload.email; Cronofy: recipients[0]).")

    def handle(self, *args, file, cohort, provider, url, timeout, application_id=None, email=None,
               link_of=None, **options):
        try:
            body = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        found = Cohort.objects.filter(slug=cohort).first()
        if found is None:
            known = ", ".join(Cohort.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No cohort with slug {cohort!r} (known: {known}).")
        if link_of:
            application_id = _ref_of(found, link_of)
        if application_id is not None or email is not None:
            body = _edited(body, file, provider, application_id, email)
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


def _edited(body, file, provider, application_id, email):
    """Return `body` (a `provider` webhook body) with its ref and/or booker's email replaced, re-encoded."""
    try:
        data = json.loads(body)
        payload = data["scheduling_request"] if provider == "cronofy" else data["payload"]
    except (ValueError, KeyError, TypeError):
        payload = None
    if not isinstance(payload, dict):
        raise CommandError(f"{file} is not a {provider} webhook body with a payload.")
    if provider == "calcom":
        if application_id is not None:
            metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
            payload["metadata"] = {**metadata, "application_id": application_id}
        if email is not None:
            if isinstance(payload.get("responses", {}).get("email"), dict):
                payload["responses"]["email"]["value"] = email
            for attendee in payload.get("attendees", [])[:1]:
                attendee["email"] = email
    elif provider == "calendly":
        if application_id is not None:
            tracking = payload.get("tracking") if isinstance(payload.get("tracking"), dict) else {}
            payload["tracking"] = {**tracking, "utm_content": application_id}
        if email is not None:
            payload["email"] = email
    else:
        if application_id is not None:
            event = payload.setdefault("event", {})
            event.setdefault("metadata", {}).setdefault("scheduler", {})["correlation_id"] = application_id
        if email is not None:
            recipients = payload.get("recipients") or [{}]
            recipients[0]["email"] = email
            payload["recipients"] = recipients
    # Compact, as the providers send it.
    return json.dumps(data, separators=(",", ":")).encode()


def _ref_of(cohort, public_id):
    """Return the signed ref of `public_id`'s bound link (scheduling.links), or raise CommandError."""
    application = cohort.applications.filter(public_id=public_id).first()
    if application is None:
        raise CommandError(f"No application {public_id!r} in {cohort.slug}.")
    number = round_waited_for(application.status) or application.round
    if number not in (1, 2):
        raise CommandError(f"{public_id} is {application.status_label.lower()}: it has no booking link.")
    return make_ref(application, number)
