"""Send the invitation reminders that are due now (Celery beat does this hourly)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from scheduling import invitations


class Command(BaseCommand):
    help = ("Send a reminder to every applicant still waiting remind_after_days after their last "
            "invitation or reminder, up to the round's max_reminders. Prints how many.")

    def handle(self, *args, **options):
        with transaction.atomic():
            count = invitations.send_reminders()
        self.stdout.write(f"Sent {count} reminder{'s' if count != 1 else ''}.")
