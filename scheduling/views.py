"""The providers' webhook endpoints: HTTP in, HTTP out; the work is in ingest and services.

One URL per provider, one shared flow (`_receive`): find the cohort by the URL's
key, read the body, check the provider's signature, store and apply. When the
database is unreachable, a verified body goes to the disk spool instead (`_spool`,
scheduling/spool.py) and is answered 202: Cal.com never retries (PROTOCOL.md §6).
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .bodies import BodyRefused, read_webhook_body
from .ingest import receive_delivery, store_for_archived_cohort
from .models import Outcome
from .providers import calcom, calendly, cronofy
from .spool import SpoolFull, secret_cache, secrets_of, spool_delivery, warm_secret_cache
from .webhook_keys import cohort_for_key

logger = logging.getLogger(__name__)

STATUS_FOR_OUTCOME = {Outcome.REJECTED: 400, Outcome.FAILED: 500}
# Calendly retries a non-2xx for 24 hours (PROTOCOL.md §8): its deliveries wait there, not in our
# spool. Cal.com never retries (§6) and Cronofy's policy is unknown: theirs are spooled.
RETRYING_PROVIDERS = frozenset({"calendly"})
SIGNATURE_HEADERS = {"calcom": calcom.SIGNATURE_HEADER, "calendly": calendly.SIGNATURE_HEADER,
                     "cronofy": cronofy.SIGNATURE_HEADER}
# Calendly retries every non-2xx for 24 hours and then disables the subscription (PROTOCOL.md
# §8): a body we stored but cannot use would only come back, byte-identical, until it cost the
# cohort its whole webhook. It is kept (sync health shows it, an admin can reprocess it), so it
# is answered 200 with outcome "rejected" and the reason. Cronofy's retry policy is not in the
# notes; it gets the same, so an unknown shape never turns into a retry storm.
STORED_IS_ENOUGH = {**STATUS_FOR_OUTCOME, Outcome.REJECTED: 200}


def _error(status, message, **extra):
    return JsonResponse({"error": message, **extra}, status=status)


def _calcom_problem(request, body, cohort):
    signature = request.headers.get(calcom.SIGNATURE_HEADER)
    if calcom.verify(body, signature, cohort.webhook_secret):
        return ""
    if not signature:
        return f"Missing {calcom.SIGNATURE_HEADER} header."
    if signature == calcom.NO_SECRET:
        return f"{calcom.SIGNATURE_HEADER} is {calcom.NO_SECRET!r}: set the cohort's secret in Cal.com."
    return f"{calcom.SIGNATURE_HEADER} does not match the body."


def _calendly_problem(request, body, cohort):
    return calendly.signature_problem(body, request.headers.get(calendly.SIGNATURE_HEADER),
                                      cohort.calendly_signing_key)


def _cronofy_problem(request, body, cohort):
    signature = request.headers.get(cronofy.SIGNATURE_HEADER)
    if not cohort.cronofy_client_secret:
        return "The cohort has no Cronofy client secret: set it on the cohort's settings."
    if not signature:
        return f"Missing {cronofy.SIGNATURE_HEADER} header."
    if not cronofy.verify(body, signature, cohort.cronofy_client_secret):
        return f"{cronofy.SIGNATURE_HEADER} does not match the body."
    return ""


def _receive(request, webhook_key, provider, signature_problem, statuses=STATUS_FOR_OUTCOME):
    """Run one delivery of `provider` through the shared flow; return the JsonResponse.

    `signature_problem(request, body, cohort)` returns "" for a valid signature, else
    the sentence the 403 carries. `statuses` maps outcomes to HTTP statuses (200 otherwise).
    """
    if request.method != "POST":
        response = _error(405, "Only POST is accepted here.")
        response["Allow"] = "POST"
        return response
    body, verified = None, False
    try:
        cohort = cohort_for_key(webhook_key)
        if cohort is None:
            secret_cache.forget(webhook_key)
            return _error(404, "Unknown webhook URL.")
        secret_cache.remember(webhook_key, secrets_of(cohort))
        warm_secret_cache(every=60)
        body = read_webhook_body(request)
        problem = signature_problem(request, body, cohort)
        if problem:
            # The cached secret may have been rotated in another process: ask the database.
            cohort = cohort_for_key(webhook_key, fresh=True)
            if cohort is None:
                return _error(404, "Unknown webhook URL.")
            problem = signature_problem(request, body, cohort)
        if problem:
            return _error(403, f"Invalid signature. {problem}")
        verified = True
        if cohort.is_archived:
            # Kept as evidence, never applied: the cohort is closed to new bookings (issue 13).
            delivery = store_for_archived_cohort(cohort, body, provider=provider)
            return _error(410, f"The cohort “{cohort.name}” is archived and takes no more bookings; this "
                          "delivery was stored but not applied. Remove this webhook at the provider.",
                          delivery=delivery.pk)
        delivery, result = receive_delivery(cohort, body, provider=provider)
    except BodyRefused as exc:
        return _error(exc.status, str(exc))
    except (OperationalError, InterfaceError):
        logger.exception("Database unavailable while receiving a %s webhook", provider)
        if provider in RETRYING_PROVIDERS:
            return _error(503, f"Database unavailable; nothing was stored. {provider.title()} retries the delivery.")
        return _spool(request, webhook_key, provider, signature_problem, body, verified=verified)
    payload = {"outcome": result.outcome, "delivery": delivery.pk, "detail": result.detail}
    status = statuses.get(result.outcome, 200)
    if result.outcome in STATUS_FOR_OUTCOME:
        payload["error"] = result.detail
    return JsonResponse(payload, status=status)


def _spool(request, webhook_key, provider, signature_problem, body, *, verified):
    """Keep a delivery the database could not take: verify it if not done yet, spool it, 202.

    `body` is None when the database failed before the body was read; `verified`
    is False when its signature was not yet checked, or failed against the cached
    secret before a fresh read of the cohort failed. Such a body is verified
    against the secrets this process remembers for the key (spool.secret_cache).
    An unverifiable body is never spooled.
    """
    if not verified:
        secrets = secret_cache.get(webhook_key)
        if secrets is None:
            logger.error("Database unavailable and webhook key %s… not seen in the last %s s: cannot verify, "
                         "delivery refused with 503", webhook_key[:6], settings.WEBHOOK_SECRET_CACHE_SECONDS)
            return _error(503, "The database is unavailable and this webhook URL was not seen in the "
                               "last minutes, so the signature cannot be checked: the delivery was not "
                               "kept. Cal.com does not retry; the next Cal.com API sync finds the booking.")
        if body is None:
            try:
                body = read_webhook_body(request)
            except BodyRefused as exc:
                return _error(exc.status, str(exc))
        problem = signature_problem(request, body, secrets)
        if problem:
            return _error(403, f"Invalid signature. {problem}")
    try:
        spool_delivery(provider, webhook_key, body, request.headers.get(SIGNATURE_HEADERS[provider], ""))
    except SpoolFull as exc:
        logger.error("Webhook spool is full (%s); a verified %s delivery was refused with 503", exc, provider)
    except OSError:
        logger.exception("Could not write a verified %s delivery to the webhook spool", provider)
    else:
        return JsonResponse({"outcome": "spooled", "detail": "The database is unavailable; the delivery "
                             "is kept on disk and will be applied when it is back."}, status=202)
    return _error(503, "The database is unavailable and the delivery could not be kept on disk; nothing "
                       "was stored. Cal.com does not retry; the next Cal.com API sync finds the booking.")


@csrf_exempt
def calcom_webhook(request, webhook_key):
    """Receive one Cal.com delivery for the cohort whose webhook key is in the URL.

    Answers JSON: 200 {outcome, delivery, detail} for applied, orphaned,
    ignored and duplicate; 400 for a body we cannot use (still stored, outcome
    rejected); 403 for a missing or wrong X-Cal-Signature-256; 410 for an archived
    cohort (stored, not applied); 404 for an unknown
    key; 405 for methods other than POST; 408, 411 and 413 for a body that is slow,
    chunked or over 1 MiB (scheduling.bodies; nothing stored). When the database is
    unreachable, a verified body is written to the disk spool and answered
    202 {"outcome": "spooled"} (imported by the drain once the database is back);
    503 only when it cannot be kept (spool full, or a key this process has not
    seen recently, so its secret is unknown).
    """
    return _receive(request, webhook_key, "calcom", _calcom_problem)


@csrf_exempt
def calendly_webhook(request, webhook_key):
    """Receive one Calendly delivery (PROTOCOL.md §8) for the cohort whose key is in the URL.

    As calcom_webhook, with `Calendly-Webhook-Signature` (t=…,v1=…, 3-minute
    tolerance) checked against `Cohort.calendly_signing_key`: 403 when it is
    missing, stale, forged or the cohort has no key. Calendly retries any non-2xx
    for 24 hours, so 2xx means stored: a stored body we cannot use is 200 with
    outcome "rejected" and its `error`; a 500 (apply failed) or 503 is worth its retry.
    """
    return _receive(request, webhook_key, "calendly", _calendly_problem, STORED_IS_ENOUGH)


@csrf_exempt
def cronofy_webhook(request, webhook_key):
    """Receive one Cronofy Scheduler notification (PROTOCOL.md §9) for the cohort in the URL.

    As calcom_webhook, with `Cronofy-HMAC-SHA256` (base64) checked against
    `Cohort.cronofy_client_secret`. Notification types we do not act on are
    stored and answered 200 with outcome "ignored"; a stored body we cannot use,
    200 with outcome "rejected" and its `error` (as for Calendly).
    """
    return _receive(request, webhook_key, "cronofy", _cronofy_problem, STORED_IS_ENOUGH)
