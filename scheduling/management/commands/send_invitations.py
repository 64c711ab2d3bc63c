"""Send round invitations from the shell, as the tab's bulk action does."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from applications.models import Cohort
from scheduling import invitations
from scheduling.models import InterviewRound, Invitation
from scheduling.rounds import round_waited_for


class Command(BaseCommand):
    help = (
        "Invite applicants of a cohort to book round N: every application waiting for it "
        "(--all-waiting) or one (--application <public id>). Prints how many were sent and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("cohort", help="The cohort's slug.")
        parser.add_argument("--round", type=int, choices=[1, 2], required=True, dest="round_number")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all-waiting", action="store_true",
                           help="Every application waiting for this round.")
        which.add_argument("--application", metavar="PUBLIC_ID", help="One application, by its public id.")

    def handle(self, *args, cohort, round_number, all_waiting, application, **options):
        found = Cohort.objects.filter(slug=cohort).select_related("organization").first()
        if found is None:
            known = ", ".join(Cohort.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No cohort with slug {cohort!r} (known: {known}).")
        if not InterviewRound.objects.filter(cohort=found, number=round_number).exists():
            raise CommandError(f"Round {round_number} is not configured for {found.slug}: "
                               f"set it up on /cohorts/{found.slug}/settings/ first.")
        status = {1: "waiting_first_round", 2: "waiting_second_round"}[round_number]
        if application:
            rows = list(found.applications.filter(public_id=application))
            if not rows:
                raise CommandError(f"No application {application!r} in {found.slug}.")
            if round_waited_for(rows[0].status) != round_number or rows[0].status != status:
                raise CommandError(f"{application} is {rows[0].status_label.lower()}, not waiting for "
                                   f"round {round_number}: nothing sent.")
        else:
            rows = found.applications.filter(status=status).order_by("pk")
        with transaction.atomic():
            summary = invitations.invite_many(rows, source=Invitation.Source.COMMAND)
        self.stdout.write(summary.sentence())
