"""Build and send signed Calendly and Cronofy bodies in tests.

Calendly bodies are the shared samples copied into fixtures/calcom/
(calendly_invitee_created.json, calendly_invitee_canceled.json) and the two bodies
derived from them in fixtures/calendly/ (the new half of the reschedule and a final
cancel; see that folder's README.md).
"""

import copy
import json
from functools import cache

from scheduling.providers import calendly, cronofy

from .calcom_helpers import SAMPLES, encode

OLD_INVITEE = "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/HDHCA5T4QZ7K2M9P"
NEW_INVITEE = "https://api.calendly.com/scheduled_events/GDHBEGGBFEGFDZ4Q/invitees/DFDDB3S2NP6W8R4T"
OLD_ID, NEW_ID = "HDHCA5T4QZ7K2M9P", "DFDDB3S2NP6W8R4T"
SIGNING_KEY = "calendly-test-signing-key"
CRONOFY_SECRET = "cronofy-test-client-secret"


@cache
def _load(name):
    return json.loads((SAMPLES / f"calendly_{name}.json").read_text())


def calendly_sample(name):
    """Return a fresh dict of "invitee_created" or "invitee_canceled"."""
    return copy.deepcopy(_load(name))


DERIVED = SAMPLES.parent / "calendly"  # the story's last two bodies (see its README.md)


def new_half():
    """The `invitee.created` of the new invitee of Ada's reschedule (to 11 June 15:00 UTC)."""
    return json.loads((DERIVED / "calendly_invitee_created_rescheduled.json").read_text())


def final_cancel():
    """Ada cancels the new invitee for good: `invitee.canceled`, `rescheduled: false`."""
    return json.loads((DERIVED / "calendly_invitee_canceled_final.json").read_text())


def post_calendly(client, cohort, data, *, header=None, timestamp=None, path=None):
    """POST `data` (dict or bytes) to `cohort`'s Calendly webhook, signed with its key now."""
    body = encode(data)
    header = calendly.sign(body, cohort.calendly_signing_key, timestamp) if header is None else header
    extra = {"HTTP_CALENDLY_WEBHOOK_SIGNATURE": header} if header is not False else {}
    return client.post(path or cohort.webhook_path("calendly"), data=body,
                       content_type="application/json", **extra)


def time_chosen(*, ref="app_7f3c2a91", start="2026-06-09T14:00:00Z", end="2026-06-09T14:30:00Z",
                srq="srq_8bDqS2nVrXkT4wYz", triggered_at="2026-06-02T16:25:40Z", kind=None):
    """A Cronofy `scheduling_request_time_chosen` in the envelope of PROTOCOL.md §9."""
    return {
        "notification": {"type": kind or "scheduling_request_time_chosen", "triggered_at": triggered_at},
        "scheduling_request": {
            "scheduling_request_id": srq,
            "slot_selection": "complete",
            "summary": "First-round interview",
            "duration": {"minutes": 30},
            "recipients": [{"email": "ada.lovelace@example.org", "display_name": "Ada Lovelace"}],
            "event": {
                "summary": "First-round interview",
                "start": start,
                "end": end,
                "metadata": {"scheduler": {"correlation_id": ref, "utm_source": "cohort-os",
                                           "captured_data.track": "Computing & Mathematics"}},
            },
        },
    }


def post_cronofy(client, cohort, data, *, signature=None, path=None):
    """POST `data` to `cohort`'s Cronofy webhook, signed with its client secret."""
    body = encode(data)
    signature = cronofy.sign(body, cohort.cronofy_client_secret) if signature is None else signature
    extra = {"HTTP_CRONOFY_HMAC_SHA256": signature} if signature is not False else {}
    return client.post(path or cohort.webhook_path("cronofy"), data=body,
                       content_type="application/json", **extra)
