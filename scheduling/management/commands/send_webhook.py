"""Sign a JSON file the way its provider would (Cal.com, Calendly or Cronofy) and POST it."""

import hashlib
import json
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

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


# An ISO 8601 date-time as Cal.com writes them: "2026-06-09T14:00:00Z", "…:07.482Z", "…+00:00".
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _walk(value, change):
    """Return `value` (parsed JSON) with `change(key, leaf)` applied to every leaf string."""
    if isinstance(value, dict):
        return {k: (_walk(v, change) if isinstance(v, (dict, list)) else change(k, v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) if isinstance(v, (dict, list)) else change(None, v) for v in value]
    return value


# The shipped samples' story starts here (calcom_booking_created.json's createdAt).
SAMPLES_START = datetime(2026, 6, 2, 16, 21, 7, 482000, tzinfo=dt_timezone.utc)


def shift_to_now(data, now):
    """Return sample `data` with every ISO date-time moved by the same whole number of days.

    With a `createdAt`, the number is the whole days from SAMPLES_START (the samples'
    first delivery) to `now`, the same for every file: replayed file by file, the
    create → reschedule → cancel story keeps its order (the reschedule still lands
    after the interview it replaces). The first delivery then reads as sent within
    the last day, its interview about a week ahead; later files' createdAt may lie a
    few days ahead, as they would in the story. Replays of the same file on the same
    day shift alike (Cal.com's dedupe key includes createdAt). Without createdAt:
    shifted so the first time is tomorrow.
    """
    def parse(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    anchor = data.get("createdAt") if isinstance(data, dict) else None
    if isinstance(anchor, str) and ISO.match(anchor):
        days = (now - SAMPLES_START) // timedelta(days=1)
    else:
        times = []
        _walk(data, lambda k, v: times.append(parse(v)) if isinstance(v, str) and ISO.match(v) else v)
        days = (now.date() - min(times).date()).days + 1 if times else 0
    delta = timedelta(days=days)

    def move(key, value):
        if not (isinstance(value, str) and ISO.match(value)):
            return value
        moved = parse(value) + delta
        text = moved.isoformat()
        return text.replace("+00:00", "Z") if value.endswith("Z") else text

    return _walk(data, move)


def as_booker(data, email):
    """Return sample `data` booked by `email`, a new booking no application knows (an orphan).

    The booker's email is replaced, `metadata.application_id` dropped, and `uid` and
    `iCalUID` derived from the email, so it starts a chain of its own.
    """
    token = hashlib.sha256(email.encode()).hexdigest()[:22]

    def change(key, value):
        if key == "uid":
            return token
        if key == "iCalUID":
            return f"{token}@Cal.com"
        if key in ("rescheduleUid", "fromReschedule"):
            return None
        return value

    changed = _walk(data, change)
    payload = changed.get("payload", changed)
    # The booker (PROTOCOL.md: attendees[0] and the booking form's responses), not the organizer.
    for attendee in payload.get("attendees") or []:
        if isinstance(attendee, dict):
            attendee["email"] = email
            break
    answer = (payload.get("responses") or {}).get("email")
    if isinstance(answer, dict):
        answer["value"] = email
    elif "email" in payload and not isinstance(payload.get("attendees"), list):
        payload["email"] = email
    if isinstance(payload.get("metadata"), dict):
        payload["metadata"].pop("application_id", None)
    return changed


class Command(BaseCommand):
    help = (
        "Sign FILE's exact bytes as PROVIDER does (Cal.com: X-Cal-Signature-256 with the cohort's "
        "secret; Calendly: Calendly-Webhook-Signature t=…,v1=… with its signing key; Cronofy: "
        "Cronofy-HMAC-SHA256 with its client secret) and POST them to the cohort's webhook URL for "
        "that provider on a running server (default SITE_URL, which follows HOST). Prints status and outcome."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON body, e.g. tests/fixtures/calcom/calcom_booking_created.json")
        parser.add_argument("--cohort", required=True, help="The cohort's slug.")
        parser.add_argument("--provider", choices=["calcom", "calendly", "cronofy"], default="calcom",
                            help="Who the body claims to come from (default calcom).")
        parser.add_argument(
            "--url", default=settings.SITE_URL,
            help=f"Server base URL, or the full webhook URL (default {settings.SITE_URL}, from HOST or SITE_URL).",
        )
        parser.add_argument(
            "--shift-to-now", action="store_true", dest="shift",
            help="Move every date in the file by whole days so it was sent today and its interview is ahead.",
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
                                            "attendees[0]; Calendly: payload.email; Cronofy: recipients[0]). "
                                            "For Cal.com it is then a new booking (its own uid) without the "
                                            "file's application id: an orphan unless --application-id is given.")

    def handle(self, *args, file, cohort, provider, url, timeout, application_id=None, email=None,
               link_of=None, shift=False, **options):
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
        if email is not None and provider == "calcom":
            try:
                body = json.dumps(as_booker(json.loads(body), email), separators=(",", ":")).encode()
            except (ValueError, AttributeError):
                raise CommandError(f"{file} is not a Cal.com JSON body, so its booker cannot be changed.") from None
        if application_id is not None or email is not None:
            body = _edited(body, file, provider, application_id, email)
        if shift:
            try:
                data = json.loads(body)
            except ValueError:
                raise CommandError(f"{file} is not JSON, so its dates cannot be moved.") from None
            body = json.dumps(shift_to_now(data, timezone.now()), separators=(",", ":")).encode()
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
