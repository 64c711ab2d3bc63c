"""Really deleting a cohort: the one way out of PROTECT, and it says what it removed.

Cohorts are archived, not deleted (issue 13). This is for what must go anyway: the
demo's `seed_demo --reset`, or personal data past its retention period. Everything
is removed in one transaction, children first, and the counts are returned for the
caller to write down.
"""

from django.db import transaction

from applications.models import Application, ApplicationEmail, Cohort, StatusChange
from applications.timeline import TimelineEntry
from orphans.models import OrphanedInterview

from .models import Booking, Invitation, InterviewRound, WebhookDelivery


def purge_cohort(cohort):
    """Delete `cohort` with everything in it (history rows included); return {what: how many}."""
    counts = {}
    with transaction.atomic():
        applications = cohort.applications.all()
        steps = [
            ("timeline entries", TimelineEntry.objects.filter(application__cohort=cohort)),
            ("status changes", StatusChange.objects.filter(application__cohort=cohort)),
            ("invitations", Invitation.objects.filter(application__cohort=cohort)),
            ("alternate emails", ApplicationEmail.objects.filter(application__cohort=cohort)),
            ("orphaned interviews", OrphanedInterview.objects.filter(cohort=cohort)),
            ("bookings", Booking.objects.filter(cohort=cohort)),
            ("webhook deliveries", WebhookDelivery.objects.filter(cohort=cohort)),
            ("interview rounds", InterviewRound.objects.filter(cohort=cohort)),
        ]
        for label, rows in steps:
            counts[label] = rows.delete()[0]
        application_ids = list(applications.values_list("pk", flat=True))
        counts["applications"] = applications.delete()[0]
        for model in (OrphanedInterview, Booking, InterviewRound):
            model.history.filter(cohort_id=cohort.pk).delete()
        Application.history.filter(id__in=application_ids).delete()
        Cohort.history.filter(id=cohort.pk).delete()
        cohort.delete()
        counts["cohorts"] = 1
    return counts
