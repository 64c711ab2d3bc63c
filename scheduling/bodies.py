"""Read a webhook body without letting the sender choose how much memory or time it costs.

Every provider's webhook view calls `read_webhook_body` before it looks at the
body. The size is known before a byte is read (Content-Length, else 411), and the
body must arrive within a deadline: a sender that trickles a body holds one worker
thread for at most WEBHOOK_READ_SECONDS. The reverse proxy in front of gunicorn
(docker-compose.yml, README "Production") is the first line: it buffers the whole
body before gunicorn sees it. This is the second, for a deployment without one.
"""

import time

from django.conf import settings

# Small reads, so the deadline is checked often even when the sender trickles:
# a WSGI input's read(n) blocks until n bytes came, however slowly they come.
CHUNK_BYTES = 4096


class BodyRefused(Exception):
    """The body cannot be used; `status` (int) and the sentence to answer with (str(exc))."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def read_webhook_body(request, *, limit=None, seconds=None):
    """Return the request's body (bytes), read in full within `seconds`.

    `limit` defaults to settings.WEBHOOK_MAX_BODY_BYTES (1 MiB) and `seconds` to
    settings.WEBHOOK_READ_SECONDS. A request with neither Content-Length nor
    Transfer-Encoding has no body (b""). Raises BodyRefused with status 411 for a
    body without Content-Length (chunked), 400 when it is not a number or the body
    ends short of it, 413 when it is over `limit` (before reading a byte) and 408
    when the body has not arrived after `seconds`.
    """
    limit = settings.WEBHOOK_MAX_BODY_BYTES if limit is None else limit
    seconds = settings.WEBHOOK_READ_SECONDS if seconds is None else seconds
    declared = request.META.get("CONTENT_LENGTH", "").strip()
    if not declared:
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            raise BodyRefused(
                411, "A Content-Length header is required: send the body with its length, not chunked."
            )
        return b""  # neither header: HTTP says the request has no body (RFC 9112 §6.3)
    if not declared.isdigit():
        raise BodyRefused(400, f"Content-Length {declared[:20]!r} is not a number of bytes.")
    length = int(declared)
    if length > limit:
        raise BodyRefused(
            413, f"The body is {length} bytes; the limit is {limit} bytes ({limit / 1048576:g} MiB). Nothing was read."
        )
    deadline = time.monotonic() + seconds
    chunks, received = [], 0
    while received < length:
        if time.monotonic() > deadline:
            raise BodyRefused(408, f"The body did not arrive within {seconds:g} seconds; nothing was stored.")
        chunk = request.read(min(CHUNK_BYTES, length - received))
        if not chunk:
            raise BodyRefused(400, f"The body ended after {received} of the {length} bytes its Content-Length announced.")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)
