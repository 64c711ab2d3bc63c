"""Apply again stored deliveries that failed or never finished."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from scheduling.models import Outcome, WebhookDelivery
from scheduling.ingest import process_delivery


class Command(BaseCommand):
    help = (
        "Reprocess stored Cal.com deliveries whose outcome is failed, or received and older than "
        "--older-than seconds (a crash mid-apply). Oldest first, so bookings replay in order."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", help="Only this delivery (repeatable).")
        parser.add_argument("--cohort", help="Only this cohort's slug.")
        parser.add_argument("--include-rejected", action="store_true",
                            help="Also re-parse deliveries rejected as bad input.")
        parser.add_argument("--older-than", type=int, default=60,
                            help="Seconds a 'received' delivery must have waited (default 60).")

    def handle(self, *args, ids, cohort, include_rejected, older_than, **options):
        outcomes = [Outcome.FAILED, Outcome.RECEIVED] + ([Outcome.REJECTED] if include_rejected else [])
        deliveries = WebhookDelivery.objects.filter(outcome__in=outcomes)
        if ids:
            deliveries = WebhookDelivery.objects.filter(pk__in=ids)
        else:
            cutoff = timezone.now() - timedelta(seconds=older_than)
            deliveries = deliveries.exclude(outcome=Outcome.RECEIVED, received_at__gt=cutoff)
        if cohort:
            deliveries = deliveries.filter(cohort__slug=cohort)
        counts = {}
        for delivery in deliveries.order_by("received_at", "pk").iterator():
            result = process_delivery(delivery)
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            self.stdout.write(f"#{delivery.pk} {delivery.trigger_event}: {result.outcome} {result.detail}")
        total = sum(counts.values())
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing to do"
        self.stdout.write(self.style.SUCCESS(f"Reprocessed {total}: {summary}."))
