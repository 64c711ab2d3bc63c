"""Orphaned interviews: bookings (from any provider) we could not match to an application."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

# A claim older than this belongs to a worker that died mid-send: the sweep may take it over.
# Well above SMTP's timeout (EMAIL_TIMEOUT) times the number of admins.
ALERT_LEASE = timedelta(minutes=10)
# After this many failed sends in a row an alert is marked "failed" (the admin sees it and can
# send it again), and the sweep slows down to one try an hour: never given up, never lost.
ALERT_MAX_ATTEMPTS = 6
ALERT_FAILED_RETRY = timedelta(hours=1)


class OrphanedInterviewQuerySet(models.QuerySet):
    def unresolved(self):
        """Return orphans nobody has matched or dismissed yet."""
        return self.filter(resolved_at__isnull=True)

    def dismissed(self):
        """Return orphans an admin (or a cancel in Cal.com) dismissed; they can be restored."""
        return self.filter(resolution=OrphanedInterview.Resolution.DISMISSED)

    def alert_claimable(self, now=None):
        """Return orphans whose alert nobody is sending: pending, claimed longer than the
        lease, or failed and last tried over ALERT_FAILED_RETRY ago."""
        now = now or timezone.now()
        state = OrphanedInterview.AlertState
        return self.filter(
            Q(alert_state=state.PENDING)
            | Q(alert_state=state.SENDING, alert_claimed_at__lt=now - ALERT_LEASE)
            | Q(alert_state=state.FAILED, alert_claimed_at__lt=now - ALERT_FAILED_RETRY)
        )


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
        SENDING = "sending", "Sending"  # claimed by one task; see claim_alert
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not needed (resolved before it was sent)"

    class DismissReason(models.TextChoices):
        TEST = "test_booking", "Test booking"
        SPAM = "spam", "Spam"
        DUPLICATE = "duplicate", "Duplicate"
        OTHER = "other", "Other"

    cohort = models.ForeignKey("applications.Cohort", models.PROTECT, related_name="orphans")
    booking_uid = models.CharField(max_length=64)
    # A seat of a seated slot (PROTOCOL.md §3-4): its attendee email; empty otherwise.
    attendee_key = models.CharField(max_length=254, blank=True)
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
        "applications.Application", models.PROTECT, null=True, blank=True,
        related_name="matched_orphans",
    )
    # The alternate email the match added to the application (unmatch takes it away again).
    added_email = models.EmailField(blank=True)

    alert_state = models.CharField(
        max_length=16, choices=AlertState.choices, default=AlertState.PENDING
    )
    alert_sent_at = models.DateTimeField(null=True, blank=True)
    alert_attempts = models.PositiveIntegerField(default=0)
    alert_last_error = models.TextField(blank=True)
    # When the current (or last) send claimed the alert: the claim's token and its lease.
    alert_claimed_at = models.DateTimeField(null=True, blank=True)

    objects = OrphanedInterviewQuerySet.as_manager()
    # Matching, dismissing and restoring write with conditional UPDATEs, then snapshot the row
    # (applications.audit.snapshot), so who dismissed it and why survives a restore.
    history = HistoricalRecords(excluded_fields=["alert_claimed_at", "alert_attempts"])

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "booking_uid", "attendee_key"],
                                    name="orphan_once_per_seat")
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

    @property
    def dismiss_reason_label(self):
        """Return the dismiss reason for people: a DismissReason label, or the stored sentence."""
        try:
            return self.DismissReason(self.dismiss_reason).label
        except ValueError:
            return self.dismiss_reason

    def claim_alert(self, now):
        """Claim this orphan's alert for one sender; return True if this call got it.

        A conditional UPDATE (pending, or a claim past its lease → sending), so
        two tasks, a task and the sweep, or a task that runs twice never both
        send it. `now` is the claim's token: pass the same value to
        `alert_sent` / `alert_failed`. Counts the attempt.
        """
        claimed = OrphanedInterview.objects.alert_claimable(now).filter(pk=self.pk).update(
            alert_state=self.AlertState.SENDING, alert_claimed_at=now,
            alert_attempts=F("alert_attempts") + 1,
        )
        if claimed:
            self.alert_state, self.alert_claimed_at = self.AlertState.SENDING, now
            self.alert_attempts += 1
        return bool(claimed)

    def alert_sent(self, claimed_at):
        """Record that the alert claimed at `claimed_at` went out."""
        self._finish_alert(claimed_at, state=self.AlertState.SENT, alert_sent_at=timezone.now(),
                           alert_last_error="")

    def alert_failed(self, claimed_at, error, *, final=False):
        """Record a failed send: back to pending for a retry, or failed after the last attempt."""
        final = final or self.alert_attempts >= ALERT_MAX_ATTEMPTS
        self._finish_alert(claimed_at, state=self.AlertState.FAILED if final else self.AlertState.PENDING,
                           alert_last_error=str(error)[:2000])

    def alert_skipped(self, claimed_at):
        """Record that no alert is needed: the orphan was resolved before it went out."""
        self._finish_alert(claimed_at, state=self.AlertState.SKIPPED)

    def _finish_alert(self, claimed_at, *, state, **fields):
        # Only the claim's owner finishes it; a sender whose lease ran out changes nothing.
        OrphanedInterview.objects.filter(
            pk=self.pk, alert_state=self.AlertState.SENDING, alert_claimed_at=claimed_at
        ).update(alert_state=state, **fields)
        self.alert_state = state
        for name, value in fields.items():
            setattr(self, name, value)
