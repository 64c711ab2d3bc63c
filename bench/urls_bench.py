"""The app's URLs plus two bench-only views, to put our webhook's numbers in context.

- `bench/floor/`: the cheapest write Django can serve, one raw INSERT of the body.
- `bench/store-only/<webhook_key>/`: what the webhook would cost if it only verified and
  stored the delivery and applied it later (not what the app does; a yardstick for the
  ack-then-apply design PROTOCOL.md §6 suggests).
"""

import hashlib

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from applications.models import Cohort
from cohortos.urls import urlpatterns as app_urlpatterns
from scheduling.providers import calcom
from scheduling.models import WebhookDelivery

FLOOR_TABLE = "bench_floor"


@csrf_exempt
def floor(request):
    """Insert the request body as one row (one INSERT, autocommit) and answer 200 JSON."""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", [request.body])
    return JsonResponse({"ok": True})


@csrf_exempt
def store_only(request, webhook_key):
    """Look up the cohort, verify, parse and store the delivery; apply nothing."""
    cohort = Cohort.objects.filter(webhook_key=webhook_key).first()
    if cohort is None:
        return JsonResponse({"error": "unknown"}, status=404)
    body = request.body
    if not calcom.verify(body, request.headers.get(calcom.SIGNATURE_HEADER), cohort.webhook_secret):
        return JsonResponse({"error": "signature"}, status=403)
    event = calcom.parse(body)
    delivery = WebhookDelivery.objects.create(
        cohort=cohort, body=body, sha256=hashlib.sha256(body).hexdigest(), trigger_event=event.trigger,
        booking_uid=event.uid[:64], event_created_at=event.created_at, logical_key=event.logical_key or None,
    )
    return JsonResponse({"outcome": "received", "delivery": delivery.pk})


urlpatterns = [
    path("bench/floor/", floor, name="bench_floor"),
    path("bench/store-only/<str:webhook_key>/", store_only, name="bench_store_only"),
    *app_urlpatterns,
]
