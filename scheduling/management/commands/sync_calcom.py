"""Reconcile one cohort with Cal.com's API now, in this process."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from applications.models import Cohort
from scheduling import sync
from scheduling.models import SyncRun


class Command(BaseCommand):
    help = (
        "Fetch the cohort's Cal.com bookings created or updated since its last successful sync "
        "(30 days the first time) and apply whatever the webhooks missed. Uses the cohort's API key "
        "and CALCOM_API_URL. Refuses while another sync of the cohort runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The cohort's slug (in its URL: /cohorts/<slug>/…).")
        parser.add_argument("--days", type=int,
                            help="Check every booking created or updated in the last DAYS days, instead of "
                                 "those since the last successful sync.")

    def handle(self, *args, slug, days, **options):
        cohort = Cohort.objects.filter(slug=slug).first()
        if cohort is None:
            raise CommandError(f"No cohort has the slug {slug!r}.")
        try:
            run = sync.start_sync(cohort, trigger=SyncRun.Trigger.COMMAND)
        except sync.SyncError as exc:
            raise CommandError(str(exc)) from None
        since = timezone.now() - timedelta(days=days) if days else None
        run = sync.run_sync(run.pk, since=since)
        for drift in run.drift.all():
            self.stdout.write(f"  {drift.sentence}")
        summary = (f"Sync #{run.pk} of {cohort.name}: {run.pages_fetched} pages, {run.bookings_checked} "
                   f"bookings checked, {run.changes_made} changes made.")
        if run.error:
            raise CommandError(f"{summary} Failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(summary))
