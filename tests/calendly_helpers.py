"""Build and send signed Calendly and Cronofy bodies in tests.

Calendly bodies start from the shared samples copied into fixtures/calcom/
(calendly_invitee_created.json, calendly_invitee_canceled.json). The sample set has
no `invitee.created` for the new half of a reschedule, so `new_half()` derives one
the way Calendly's reschedule guide describes it (§8): a new invitee on a new
scheduled event, with `old_invitee` naming the one it replaces.
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


def new_half(*, created_at="2026-06-05T08:47:34.000000Z"):
    """The `invitee.created` of the new invitee of Ada's reschedule (to 11 June 15:00 UTC)."""
    data = calendly_sample("invitee_created")
    data["created_at"] = created_at
    payload = data["payload"]
    payload.update(uri=NEW_INVITEE, old_invitee=OLD_INVITEE, created_at="2026-06-05T08:47:33.901000Z",
                   updated_at="2026-06-05T08:47:33.901000Z",
                   event="https://api.calendly.com/scheduled_events/GDHBEGGBFEGFDZ4Q")
    event = payload["scheduled_event"]
    event.update(uri="https://api.calendly.com/scheduled_events/GDHBEGGBFEGFDZ4Q",
                 start_time="2026-06-11T15:00:00.000000Z", end_time="2026-06-11T15:30:00.000000Z")
    return data


def final_cancel(*, created_at="2026-06-07T10:00:00.000000Z"):
    """Ada cancels the new invitee for good: `invitee.canceled`, `rescheduled: false`."""
    data = new_half()
    data.update(event="invitee.canceled", created_at=created_at)
    payload = data["payload"]
    payload.update(status="canceled", rescheduled=False, new_invitee=None,
                   cancellation={"canceled_by": "Ada Lovelace", "canceler_type": "invitee",
                                 "created_at": created_at, "reason": "I have accepted another offer."})
    payload["scheduled_event"]["status"] = "canceled"
    return data


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
