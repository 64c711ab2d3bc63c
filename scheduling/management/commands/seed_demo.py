"""Load the quick start's demo organization, cohort, applications and admin login."""

import os
import random
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from applications.models import Application, Cohort, Membership, Organization
from scheduling import invitations, links
from scheduling.applicant import applicant_page_url
from scheduling.retention import purge_cohort
from scheduling.events import BookingEvent
from scheduling.models import InterviewRound, Invitation
from scheduling.providers import calcom
from scheduling.services import apply_booking_event
from scheduling.status import Status

DEMO_USERNAME = "admin"
# The quick start's login (DEBUG on, a laptop). With DEBUG off the password is random.
DEMO_PASSWORD = "cohortos-demo"
DEMO_COHORT = "northwind-2026"
FLAG = "--i-know-this-is-not-production"
# The repo's own copies of Cal.com's sample deliveries (relative to the project root).
SAMPLES = "tests/fixtures/calcom"

# Named after the people in ../shared/calcom/samples so replays find their applications.
SAMPLE_PEOPLE = [
    ("Ada Lovelace", "ada.lovelace@example.org", Status.WAITING_FIRST_ROUND, "app_7f3c2a91"),
    ("Mary Somerville", "mary.somerville@example.org", Status.WAITING_SECOND_ROUND, "app_2b81d0c4"),
    ("Emmy Noether", "emmy.noether@example.org", Status.WAITING_FIRST_ROUND, None),
]
FIRST = ["Alan", "Barbara", "Claude", "Dorothy", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
         "Joan", "Katherine", "Leslie", "Margaret", "Niklaus", "Olga", "Radia", "Sophie",
         "Tim", "Valerie", "Whitfield", "Yukihiro", "Zhores", "Annie", "Donald", "Evelyn",
         "John", "Lynn", "Marvin", "Shafi", "Ken", "Adele", "Bjarne"]
LAST = ["Turing", "Liskov", "Shannon", "Hodgkin", "Dijkstra", "Allen", "Hopper", "Lamarr",
        "Sutherland", "Clarke", "Johnson", "Lamport", "Hamilton", "Wirth", "Taussky", "Perlman",
        "Wilson", "Berners-Lee", "Taylor", "Diffie", "Matsumoto", "Alferov", "Easley", "Knuth",
        "Boyd", "Backus", "Conway", "Minsky", "Goldwasser", "Thompson", "Goldberg", "Stroustrup"]
# Both rounds, with the event types of the shared samples (payload.type / payload.eventTypeId).
DEMO_ROUNDS = [
    (1, "https://cal.com/northwind/first-round-interview", ["first-round-interview", 88231]),
    (2, "https://cal.com/northwind/final-round-interview", ["final-round-interview", 88232]),
]
# (status, how many, schedule kind) for the generated applicants.
PLAN = [
    (Status.NEW, 4, None),
    (Status.WAITING_FIRST_ROUND, 4, None),
    (Status.FIRST_ROUND_SCHEDULED, 3, "future"),
    (Status.FIRST_ROUND_SCHEDULED, 2, "past"),
    (Status.WAITING_FIRST_ROUND, 1, "pending"),
    (Status.WAITING_FIRST_ROUND, 1, "reschedule_requested"),
    (Status.NEEDS_FIRST_DECISION, 3, None),
    (Status.WAITING_SECOND_ROUND, 3, None),
    (Status.SECOND_ROUND_SCHEDULED, 2, "future"),
    (Status.NEEDS_FINAL_DECISION, 2, None),
    (Status.ACCEPTED, 2, None),
    (Status.WAITLIST, 2, None),
    (Status.DECLINED, 3, None),
]


class Command(BaseCommand):
    help = "Create the demo organization, cohort, 30+ applications in every status and an admin login."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo cohort first.")
        parser.add_argument(
            FLAG, dest="not_production", action="store_true",
            help="Run even with DEBUG off (a staging copy): the admin then gets a random password.",
        )

    @transaction.atomic
    def handle(self, *args, reset=False, not_production=False, **options):
        if not settings.DEBUG and not not_production:
            # A superuser with a published password on a production database is a way in.
            raise CommandError(
                f"seed_demo creates a superuser and demo data; DEBUG is off, so this looks like production. "
                f"Refusing. On a machine that is not production, add {FLAG}."
            )
        old = Cohort.objects.filter(slug=DEMO_COHORT).first() if reset else None
        if old is not None:
            # Cohorts are protected from deletion (archived instead); the demo's is purged on purpose.
            counts = purge_cohort(old)
            self.stdout.write("Deleted the demo cohort: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        password = DEMO_PASSWORD if settings.DEBUG else secrets.token_urlsafe(16)
        user, created = self._admin_user(password)
        org, _ = Organization.objects.get_or_create(
            slug="northwind", defaults={"name": "Northwind Fellowship", "time_zone": "Europe/London"}
        )
        Membership.objects.get_or_create(
            user=user, organization=org, defaults={"role": Membership.Role.ADMIN}
        )
        cohort = Cohort.objects.filter(slug=DEMO_COHORT).first()
        if cohort is None:
            # Every secret is random (issue 14): send_webhook signs with whatever the cohort holds.
            cohort = Cohort.objects.create(
                organization=org, name="Northwind Fellowship 2026", slug=DEMO_COHORT,
                reply_to_email="fellowship@northwind.example",
            )
            self._applications(cohort)
        self._rounds(cohort)
        if not cohort.calendly_signing_key or not cohort.cronofy_client_secret:
            cohort.calendly_signing_key = cohort.calendly_signing_key or secrets.token_urlsafe(32)
            cohort.cronofy_client_secret = cohort.cronofy_client_secret or secrets.token_urlsafe(32)
            cohort.save(update_fields=["calendly_signing_key", "cronofy_client_secret"])
        site = settings.SITE_URL
        ada = cohort.applications.filter(public_id="app_7f3c2a91").first()
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: {cohort.applications.count()} applications in {cohort.name}.\n"
        ))
        # An admin made earlier keeps its password: print ours only when it is that one.
        known = created or (settings.DEBUG and user.check_password(password))
        login = f"{DEMO_USERNAME} / {password}" if known else (
            f"{DEMO_USERNAME} (password set when it was created; change it with "
            f"`manage.py changepassword {DEMO_USERNAME}`)"
        )
        # Runnable as printed from a second terminal: DEBUG=1 (no SECRET_KEY needed), HOST kept.
        host = os.environ.get("HOST", "")
        prefix = "DEBUG=1 " + (f"HOST={host} " if host and host != "127.0.0.1:8000" else "")
        replay = f"{prefix}.venv/bin/python manage.py send_webhook"
        self.stdout.write(
            f"  Log in:          {site}/accounts/login/  as {login}\n"
            f"  Webhook URL:     {site}{cohort.webhook_path()}\n"
            f"  Webhook secret:  {cohort.webhook_secret}\n"
            f"  Calendly URL:    {site}{cohort.webhook_path('calendly')}  (signing key {cohort.calendly_signing_key})\n"
            f"  Cronofy URL:     {site}{cohort.webhook_path('cronofy')}\n"
            + (f"  Ada's own page:  {applicant_page_url(ada)} (no login; invitations carry each "
               "applicant's own)\n" if ada else "") +
            f"  Replay a sample: {replay} {SAMPLES}/calcom_booking_created.json "
            f"--cohort {cohort.slug} --shift-to-now\n"
            f"  Make an orphan:  {replay} {SAMPLES}/calcom_booking_created.json "
            f"--cohort {cohort.slug} --shift-to-now --email someone.new@example.net\n"
            f"  Settings:        {site}/cohorts/{cohort.slug}/settings/  (both rounds set up)\n"
        )
        if ada is not None and ada.status == Status.WAITING_FIRST_ROUND:
            ref = links.make_ref(ada, 1)
            self.stdout.write(
                f"  Ada's bound link (round 1): {links.link_for(ada)[1]}\n"
                f"  Book it with another email: {replay} "
                f"{SAMPLES}/calcom_booking_created.json --cohort {cohort.slug} --shift-to-now "
                f"--application-id {ref} --email ada.personal@example.net\n"
                f"  (or --link-of {ada.public_id} instead of --application-id: the same reference)\n"
                f"  Send due reminders: {prefix}.venv/bin/python manage.py send_reminders\n"
            )

    def _rounds(self, cohort):
        """Set up both interview rounds (auto-invite, reminders after 3 days) and some past invitations."""
        for number, url, event_types in DEMO_ROUNDS:
            InterviewRound.objects.get_or_create(cohort=cohort, number=number, defaults={
                "booking_url": url, "event_types": event_types, "auto_invite": True,
                "remind_after_days": 3, "max_reminders": 2,
            })
        if Invitation.objects.filter(application__cohort=cohort).exists():
            return
        # Two applicants invited four days ago and never booked: `send_reminders` reminds them.
        sent_at = timezone.now() - timedelta(days=4)
        waiting = cohort.applications.filter(status=Status.WAITING_FIRST_ROUND, interview_booking_uid="",
                                             pending_booking_uid="").exclude(public_id="app_7f3c2a91")
        for application in waiting.order_by("pk")[:2]:
            interview_round, link = links.link_for(application)
            context = invitations.template_context(application, interview_round, link=link, since=sent_at)
            subject, body = invitations.render_invitation(interview_round, context)
            Invitation.objects.create(
                application=application, round=1, entry="initial", source=Invitation.Source.MANUAL,
                to_email=application.contact_email, booking_link=link, subject=subject, body=body,
                state=Invitation.State.SENT, created_at=sent_at, sent_at=sent_at, attempts=1,
            )

    def _admin_user(self, password):
        """Return (the demo superuser, whether it was created now with `password`)."""
        users = get_user_model()
        user = users.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            return users.objects.create_superuser(DEMO_USERNAME, "admin@example.org", password), True
        return user, False

    def _applications(self, cohort):
        rng = random.Random(2026)
        now = timezone.now().replace(second=0, microsecond=0)
        for name, email, status, public_id in SAMPLE_PEOPLE:
            extra = {"public_id": public_id} if public_id else {}
            self._create(cohort, name, email, status, now - timedelta(days=6), **extra)
        people = iter(zip(FIRST, LAST))
        for status, count, schedule in PLAN:
            for _ in range(count):
                first, last = next(people)
                email = f"{first}.{last}".lower().replace("-", "") + "@example.org"
                created = now - timedelta(days=rng.randint(2, 40), hours=rng.randint(0, 23))
                application = self._create(cohort, f"{first} {last}", email, status, created)
                if schedule:
                    self._book(cohort, application, schedule, now, rng)

    def _create(self, cohort, name, email, status, created, **extra):
        # Demo rows start in their final status; real ones only get there through move_to.
        return Application.objects.create(
            cohort=cohort, applicant_name=name, contact_email=email, status=status,
            created_at=created, updated_at=created, **extra,
        )

    def _book(self, cohort, application, kind, now, rng):
        uid = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                      for _ in range(22))
        offset = timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 8))
        start = (now + offset if kind != "past" else now - offset).replace(minute=0)
        event = BookingEvent(
            trigger=calcom.BOOKING_REQUESTED if kind == "pending" else calcom.BOOKING_CREATED,
            created_at=now - timedelta(days=14), uid=uid, ical_uid=f"{uid}@Cal.com", ical_sequence=0,
            start=start, end=start + timedelta(minutes=30), email=application.contact_email,
            name=application.applicant_name, time_zone=rng.choice(["Europe/Paris", "America/Chicago", "Asia/Tokyo"]),
            meeting_url=f"https://meet.google.com/demo-{uid[:4].lower()}", event_type="first-round-interview",
            title="First-round interview", application_id=application.public_id,
        )
        apply_booking_event(event, cohort=cohort)
        if kind == "reschedule_requested":
            cancel = BookingEvent(
                trigger=calcom.BOOKING_CANCELLED, created_at=now - timedelta(days=1), uid=uid,
                ical_uid=event.ical_uid, ical_sequence=1, start=event.start, end=event.end,
                email=event.email, request_reschedule=True,
                reason="The panel chair is travelling that week; please pick a new time.",
            )
            apply_booking_event(cancel, cohort=cohort)
