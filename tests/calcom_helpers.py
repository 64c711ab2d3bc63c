"""Build and send signed Cal.com bodies in tests, from the shared samples copied into fixtures/."""

import copy
import json
from functools import cache
from pathlib import Path

from scheduling.providers import calcom

SAMPLES = Path(__file__).parent / "fixtures" / "calcom"


@cache
def _load(name):
    return json.loads((SAMPLES / f"calcom_{name}.json").read_text())


def sample(name, **payload_overrides):
    """Return a fresh dict of sample `name` ("booking_created", …) with payload keys overridden.

    An override of None removes the key (Cal.com omits undefined keys, PROTOCOL.md §1).
    `createdAt` / `triggerEvent` overrides go to the envelope.
    """
    data = copy.deepcopy(_load(name))
    target = data.get("payload", data)
    for key, value in payload_overrides.items():
        where = data if key in ("createdAt", "triggerEvent") else target
        if value is None:
            where.pop(key, None)
        else:
            where[key] = value
    return data


def with_email(data, email, name=None):
    """Set the booker's email (responses and attendees) in sample dict `data`; return it."""
    payload = data.get("payload", data)
    payload["responses"]["email"]["value"] = email
    payload["attendees"][0]["email"] = email
    if name:
        payload["responses"]["name"]["value"] = name
        payload["attendees"][0]["name"] = name
    return data


def encode(data):
    """Return `data` as compact JSON bytes, the way Cal.com's JSON.stringify sends it."""
    return data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()


def post(client, cohort, data, *, signature=None, path=None):
    """POST `data` (dict or bytes) to `cohort`'s webhook, signed over the exact bytes sent."""
    body = encode(data)
    headers = {}
    signature = calcom.sign(body, cohort.webhook_secret) if signature is None else signature
    if signature is not False:
        headers["HTTP_X_CAL_SIGNATURE_256"] = signature
    return client.post(path or cohort.webhook_path(), data=body, content_type="application/json",
                       **headers)


def post_together(bodies, cohort):
    """POST each body from its own thread (own DB connection), all released at once.

    Returns the responses in the order of `bodies` (an exception or None for a
    thread that failed or never answered).
    """
    from django.test import Client

    from .threads import run_together

    return run_together(*[lambda body=body: post(Client(), cohort, body) for body in bodies])
