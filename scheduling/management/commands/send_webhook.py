"""Sign a JSON file with a cohort's webhook secret and POST it, as Cal.com would."""

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from applications.models import Cohort
from scheduling.providers import calcom

# An ISO 8601 date-time as Cal.com writes them: "2026-06-09T14:00:00Z", "…:07.482Z", "…+00:00".
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _walk(value, change):
    """Return `value` (parsed JSON) with `change(key, leaf)` applied to every leaf string."""
    if isinstance(value, dict):
        return {k: (_walk(v, change) if isinstance(v, (dict, list)) else change(k, v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) if isinstance(v, (dict, list)) else change(None, v) for v in value]
    return value


def shift_to_now(data, now):
    """Return sample `data` with every ISO date-time moved by the same whole number of days.

    The number is the most that keeps the envelope's `createdAt` in the past: the
    delivery reads as sent within the last day, and its interview keeps its place
    relative to it (a week later, 14:00 as in the sample), so a replayed booking is
    in the future. Replays of the same file on the same day shift alike (Cal.com's
    dedupe key includes createdAt). Without createdAt: shifted so the first time is tomorrow.
    """
    def parse(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    anchor = data.get("createdAt") if isinstance(data, dict) else None
    if isinstance(anchor, str) and ISO.match(anchor):
        days = (now - parse(anchor)) // timedelta(days=1)
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
        "Sign FILE's bytes with the cohort's Cal.com secret and POST them to the cohort's webhook "
        "URL on a running server (default: SITE_URL, which follows HOST). Prints status and outcome."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON body, e.g. tests/fixtures/calcom/calcom_booking_created.json")
        parser.add_argument("--cohort", required=True, help="The cohort's slug.")
        parser.add_argument(
            "--url", default=settings.SITE_URL,
            help=f"Server base URL, or the full webhook URL (default {settings.SITE_URL}, from HOST or SITE_URL).",
        )
        parser.add_argument(
            "--shift-to-now", action="store_true", dest="shift",
            help="Move every date in the file by whole days so it was sent today and its interview is ahead.",
        )
        parser.add_argument(
            "--email",
            help="Send it as a new booking (its own uid) by this email and without the file's application "
                 "id: without --application-id too, an orphan.",
        )
        parser.add_argument(
            "--application-id", metavar="REF",
            help="Set payload.metadata.application_id, as a booking link's ?metadata[application_id]= would "
                 "(e.g. a ref copied from an application page).",
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait (default 30).")

    def handle(self, *args, file, cohort, url, timeout, shift=False, email=None, application_id=None,
               **options):
        try:
            body = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        if shift or email or application_id is not None:
            try:
                data = json.loads(body)
                payload = data.get("payload", data)
            except (ValueError, AttributeError):
                raise CommandError(f"{file} is not a Cal.com JSON body, so it cannot be changed.") from None
            if email:
                data = as_booker(data, email)
                payload = data.get("payload", data)
            if application_id is not None:
                metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
                payload["metadata"] = {**metadata, "application_id": application_id}
            if shift:
                data = shift_to_now(data, timezone.now())
            body = json.dumps(data, separators=(",", ":")).encode()
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
