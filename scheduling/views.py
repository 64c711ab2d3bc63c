"""The Cal.com webhook endpoint: HTTP in, HTTP out; the work is in services."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from applications.models import Cohort

from .providers import calcom
from .models import Outcome
from .ingest import receive_calcom_delivery
from .spool import SpoolFull, secret_cache, spool_delivery, warm_secret_cache

logger = logging.getLogger(__name__)

# Bodies up to this size are stored even when rejected as too large; beyond it we do not
# hold them in memory at all.
STORE_LIMIT_BYTES = 8 * 1024 * 1024
STATUS_FOR_OUTCOME = {Outcome.REJECTED: 400, Outcome.FAILED: 500}


def _error(status, message, **extra):
    return JsonResponse({"error": message, **extra}, status=status)


def _read_body(request):
    """Return the raw body, or None when it is over STORE_LIMIT_BYTES (not held in memory)."""
    body = request.read(STORE_LIMIT_BYTES + 1)
    return None if len(body) > STORE_LIMIT_BYTES else body


def _bad_signature(signature):
    problem = (
        f"Missing {calcom.SIGNATURE_HEADER} header." if not signature
        else f"{calcom.SIGNATURE_HEADER} is {calcom.NO_SECRET!r}: set the cohort's secret in Cal.com."
        if signature == calcom.NO_SECRET
        else f"{calcom.SIGNATURE_HEADER} does not match the body."
    )
    return _error(403, f"Invalid signature. {problem}")


@csrf_exempt
def calcom_webhook(request, webhook_key):
    """Receive one Cal.com delivery for the cohort whose webhook key is in the URL.

    Answers JSON: 200 {outcome, delivery, detail} for applied, orphaned,
    ignored and duplicate; 400 for a body we cannot use (still stored, outcome
    rejected); 403 for a missing or wrong X-Cal-Signature-256; 404 for an unknown
    key; 405 for methods other than POST; 413 over 8 MiB. When the database is
    unreachable, a verified body is written to the disk spool and answered
    202 {"outcome": "spooled"} (imported by the drain once the database is back);
    503 only when it cannot be kept (spool full, or a key not seen recently so its
    secret is unknown). Cal.com never retries (PROTOCOL.md §6).
    """
    if request.method != "POST":
        response = _error(405, "Only POST is accepted here.")
        response["Allow"] = "POST"
        return response
    body = None
    signature = request.headers.get(calcom.SIGNATURE_HEADER)
    try:
        cohort = Cohort.objects.filter(webhook_key=webhook_key).first()
        if cohort is None:
            secret_cache.forget(webhook_key)
            return _error(404, "Unknown webhook URL.")
        secret_cache.remember(webhook_key, cohort.webhook_secret)
        warm_secret_cache(every=60)
        body = _read_body(request)
        if body is None:
            return _error(413, "Body is over 8 MiB; not stored.")
        if not calcom.verify(body, signature, cohort.webhook_secret):
            return _bad_signature(signature)
        delivery, result = receive_calcom_delivery(cohort, body)
    except (OperationalError, InterfaceError):
        logger.exception("Database unavailable while receiving a Cal.com webhook")
        return _spool(request, "calcom", webhook_key, body, signature)
    payload = {"outcome": result.outcome, "delivery": delivery.pk, "detail": result.detail}
    status = STATUS_FOR_OUTCOME.get(result.outcome, 200)
    if status != 200:
        payload["error"] = result.detail
    return JsonResponse(payload, status=status)


def _spool(request, provider, webhook_key, body, signature):
    """Keep a delivery the database could not take: verify it if not yet done, spool it, 202.

    `body` is None when the database failed before the body was read and
    verified; it is then verified against the secret remembered for the key.
    """
    if body is None:
        secret = secret_cache.get(webhook_key)
        if secret is None:
            logger.error("Database unavailable and webhook key %s… not seen in the last %s s: cannot verify, "
                         "delivery refused with 503", webhook_key[:6], settings.WEBHOOK_SECRET_CACHE_SECONDS)
            return _error(503, "The database is unavailable and this webhook URL was not seen in the "
                               "last minutes, so the signature cannot be checked: the delivery was not "
                               "kept. Cal.com does not retry; the next Cal.com API sync finds the booking.")
        body = _read_body(request)
        if body is None:
            return _error(413, "Body is over 8 MiB; not stored.")
        if not calcom.verify(body, signature, secret):
            return _bad_signature(signature)
    try:
        spool_delivery(provider, webhook_key, body, signature)
    except SpoolFull as exc:
        logger.error("Webhook spool is full (%s); a verified %s delivery was refused with 503", exc, provider)
    except OSError:
        logger.exception("Could not write a verified %s delivery to the webhook spool", provider)
    else:
        return JsonResponse({"outcome": "spooled", "detail": "The database is unavailable; the delivery "
                             "is kept on disk and will be applied when it is back."}, status=202)
    return _error(503, "The database is unavailable and the delivery could not be kept on disk; nothing "
                       "was stored. Cal.com does not retry; the next Cal.com API sync finds the booking.")
