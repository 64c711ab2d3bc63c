"""Orphaned interviews: Cal.com bookings we could not match to an application."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class OrphanedInterviewQuerySet(models.QuerySet):
    def unresolved(self):
        """Return orphans nobody has matched or dismissed yet."""
        return self.filter(resolved_at__isnull=True)


class OrphanedInterview(models.Model):
    """A booking that matched no application (or several), kept for an admin to match by hand."""

    class Reason(models.TextChoices):
        NO_MATCH = "no_match", "No application with this email"
        AMBIGUOUS = "ambiguous", "Ambiguous: several applications have this email"

    class Resolution(models.TextChoices):
        MATCHED = "matched", "Matched"
        DISMISSED = "dismissed", "Dismissed"

    class AlertState(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    cohort = models.ForeignKey("applications.Cohort", models.CASCADE, related_name="orphans")
    booking_uid = models.CharField(max_length=64)
    ical_uid = models.CharField(max_length=200, blank=True)
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    meeting_url = models.URLField(max_length=500, blank=True)
    event_type = models.CharField(max_length=200, blank=True)
    application_ref = models.CharField(
        max_length=64, blank=True, help_text="metadata.application_id as Cal.com sent it, if any."
    )
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.NO_MATCH)
    delivery = models.ForeignKey(
        "scheduling.WebhookDelivery", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    dismiss_reason = models.CharField(max_length=200, blank=True)
    application = models.ForeignKey(
        "applications.Application", models.SET_NULL, null=True, blank=True,
        related_name="matched_orphans",
    )

    alert_state = models.CharField(
        max_length=16, choices=AlertState.choices, default=AlertState.PENDING
    )
    alert_sent_at = models.DateTimeField(null=True, blank=True)
    alert_attempts = models.PositiveIntegerField(default=0)
    alert_last_error = models.TextField(blank=True)

    objects = OrphanedInterviewQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "booking_uid"], name="orphan_once_per_booking")
        ]
        indexes = [
            models.Index(fields=["cohort", "resolved_at"], name="orphan_cohort_resolved"),
            models.Index(fields=["alert_state", "created_at"], name="orphan_alert_state"),
        ]

    def __str__(self):
        return f"{self.email} {self.booking_uid}"

    @property
    def is_resolved(self):
        return self.resolved_at is not None
