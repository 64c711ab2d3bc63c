"""Keep webhook keys out of the logs: a key in a URL is the credential that lets anyone post.

The console handler (cohortos/settings.py LOGGING) runs every record through
MaskWebhookKeys, so Django's request warnings ("Not Found: /webhooks/calcom/…"),
runserver's request lines and our own messages show `webhooks/calcom/…abcd/`.
The reverse proxy masks its access log the same way (README, "Production").
"""

import logging
import re

# /webhooks/<provider>/<key>: the key is the segment after the provider's name.
WEBHOOK_PATH = re.compile(r"(/webhooks/[\w-]+/)([^/?#\s\"']+)")


def mask_webhook_keys(text):
    """Return `text` with every webhook key in a /webhooks/<provider>/<key> path cut to its last 4 characters."""
    return WEBHOOK_PATH.sub(lambda m: f"{m[1]}…{m[2][-4:]}", text)


class MaskWebhookKeys(logging.Filter):
    """A logging filter that rewrites a record's message with its webhook keys masked (never drops it)."""

    def filter(self, record):
        message = record.getMessage()
        masked = mask_webhook_keys(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
