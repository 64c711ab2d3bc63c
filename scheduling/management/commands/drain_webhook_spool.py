"""Import the webhook bodies spooled to disk while the database was unreachable."""

from django.core.management.base import BaseCommand

from scheduling.spool import drain_spool, spool_dir


class Command(BaseCommand):
    help = (
        "Import the verified webhook bodies spooled in WEBHOOK_SPOOL_DIR during a database outage, "
        "oldest first, through the normal store → apply path; each file is deleted once its row "
        "is committed. Safe to run while the beat task drains too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, help="Import at most this many files.")

    def handle(self, *args, limit, **options):
        report = drain_spool(limit=limit)
        self.stdout.write(f"Spool: {spool_dir()}")
        style = self.style.WARNING if report.stopped or report.dead else self.style.SUCCESS
        self.stdout.write(style(report.summary()))
