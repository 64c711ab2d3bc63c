"""The Cal.com webhook endpoint: HTTP in, HTTP out; the work is in services."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from applications.models import Cohort

from .bodies import BodyRefused, read_webhook_body
from .providers import calcom
from .models import Outcome
from .ingest import receive_calcom_delivery

logger = logging.getLogger(__name__)

STATUS_FOR_OUTCOME = {Outcome.REJECTED: 400, Outcome.FAILED: 500}


def _error(status, message, **extra):
    return JsonResponse({"error": message, **extra}, status=status)


@csrf_exempt
def calcom_webhook(request, webhook_key):
    """Receive one Cal.com delivery for the cohort whose webhook key is in the URL.

    Answers JSON: 200 {outcome, delivery, detail} for applied, orphaned,
    ignored and duplicate; 400 for a body we cannot use (still stored, outcome
    rejected); 403 for a missing or wrong X-Cal-Signature-256; 404 for an unknown
    key; 405 for methods other than POST; 408, 411 and 413 for a body that is
    slow, chunked or over 1 MiB (scheduling.bodies; nothing stored); 503 when the
    database is unreachable (Cal.com may redeliver; the stored copy is then applied once).
    """
    if request.method != "POST":
        response = _error(405, "Only POST is accepted here.")
        response["Allow"] = "POST"
        return response
    try:
        cohort = Cohort.objects.filter(webhook_key=webhook_key).first()
        if cohort is None:
            return _error(404, "Unknown webhook URL.")
        body = read_webhook_body(request)
        signature = request.headers.get(calcom.SIGNATURE_HEADER)
        if not calcom.verify(body, signature, cohort.webhook_secret):
            problem = (
                f"Missing {calcom.SIGNATURE_HEADER} header." if not signature
                else f"{calcom.SIGNATURE_HEADER} is {calcom.NO_SECRET!r}: set the cohort's secret in Cal.com."
                if signature == calcom.NO_SECRET
                else f"{calcom.SIGNATURE_HEADER} does not match the body."
            )
            return _error(403, f"Invalid signature. {problem}")
        delivery, result = receive_calcom_delivery(cohort, body)
    except BodyRefused as exc:
        return _error(exc.status, str(exc))
    except (OperationalError, InterfaceError):
        logger.exception("Database unavailable while receiving a Cal.com webhook")
        return _error(503, "Database unavailable; nothing was applied. Retry the delivery.")
    payload = {"outcome": result.outcome, "delivery": delivery.pk, "detail": result.detail}
    status = STATUS_FOR_OUTCOME.get(result.outcome, 200)
    if status != 200:
        payload["error"] = result.detail
    return JsonResponse(payload, status=status)
