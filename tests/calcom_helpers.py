"""Build and send signed Cal.com bodies in tests, from the shared samples copied into fixtures/."""

import copy
import json
import threading
from functools import cache
from pathlib import Path

from scheduling import calcom

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

    Returns the responses in the order of `bodies` (None for a thread that never answered).
    """
    from django.db import connections
    from django.test import Client

    barrier = threading.Barrier(len(bodies))
    responses = [None] * len(bodies)

    def worker(i, body):
        try:
            barrier.wait(30)
            responses[i] = post(Client(), cohort, body)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return responses
