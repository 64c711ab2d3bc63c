"""Cohorts: their webhook keys and secrets, archiving, and the version stamp of their Applications tab."""

import secrets

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from simple_history.models import HistoricalRecords

from ..encryption import EncryptedTextField
from .orgs import Membership, Organization


def new_webhook_key():
    """Return an unguessable URL-safe token (32 characters) for a cohort's webhook URL."""
    return secrets.token_urlsafe(24)


def new_webhook_secret():
    """Return a random signing secret (43 characters) to paste into Cal.com's webhook form."""
    return secrets.token_urlsafe(32)


class CohortQuerySet(models.QuerySet):
    def for_user(self, user):
        """Return the cohorts of organizations `user` is a member of (none for anonymous users)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)


class Cohort(models.Model):
    # Deleting is not how a cohort ends (it is archived): PROTECT keeps its applications.
    organization = models.ForeignKey(Organization, models.PROTECT, related_name="cohorts")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, blank=True)
    webhook_key = models.CharField(max_length=64, unique=True, default=new_webhook_key)
    webhook_secret = models.CharField(max_length=128, default=new_webhook_secret)
    # Cal.com API v2 key for reconciliation (scheduling/sync.py); encrypted at rest, the
    # attribute holds the plain key. Shown only as its last four characters.
    calcom_api_key = EncryptedTextField(blank=True)
    reply_to_email = models.EmailField(
        blank=True, help_text="Where applicants write back; named on their page when a link no longer works.",
    )
    # Other providers' secrets are theirs to issue: pasted in by an admin, empty until then
    # (and until then that provider's webhook answers 403 saying so).
    calendly_signing_key = models.CharField(
        max_length=200, blank=True,
        help_text="The signing key of the cohort's Calendly webhook subscription.")
    cronofy_client_secret = models.CharField(
        max_length=200, blank=True,
        help_text="The client secret of the Cronofy application that sends Scheduler notifications.")
    created_at = models.DateTimeField(default=timezone.now)
    # Archived: read-only, closed to new bookings, out of the switcher; webhooks answer 410.
    archived_at = models.DateTimeField(null=True, blank=True)
    # The secret in the interview feed's URL (calendar apps cannot log in); rotatable.
    calendar_token = models.CharField(max_length=64, unique=True, default=new_webhook_key)
    overdue_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days an application may wait for an interview before the tab flags it overdue.",
    )
    # The change stamp of everything the Applications tab shows: bumped (bump_cohort_version)
    # by every change to the cohort's applications, bookings or orphans; the tab's ETag.
    version = models.PositiveBigIntegerField(default=0, editable=False)

    objects = CohortQuerySet.as_manager()
    # Secrets stay out of the history: a rotated secret must not live on in an old row.
    # Secrets stay out of the history tables (the API key is encrypted, but a copy is a copy).
    history = HistoricalRecords(
        excluded_fields=["webhook_key", "webhook_secret", "calendar_token", "calcom_api_key"])

    def __str__(self):
        return self.name

    @property
    def is_archived(self):
        return self.archived_at is not None

    def archive(self, *, user=None):
        """Archive the cohort now (a no-op when archived already); recorded in its history."""
        if self.archived_at is None:
            self.archived_at = timezone.now()
            self._history_user = user
            self.save(update_fields=["archived_at"])

    def unarchive(self, *, user=None):
        """Bring an archived cohort back: editable, open to bookings, in the switcher."""
        if self.archived_at is not None:
            self.archived_at = None
            self._history_user = user
            self.save(update_fields=["archived_at"])

    def rotate_calendar_token(self):
        """Give the interview feed a new secret URL; the old one then answers 404."""
        self.calendar_token = new_webhook_key()
        self.save(update_fields=["calendar_token"])

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._unique_slug()
        super().save(*args, **kwargs)

    def _unique_slug(self):
        base = slugify(self.name)[:70] or "cohort"
        slug, n = base, 2
        while Cohort.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    @property
    def viewer_is_admin(self):
        """Return True when read through applications.access.cohorts_with_role by an org admin."""
        return getattr(self, "viewer_role", None) == Membership.Role.ADMIN

    def rotate_webhook_key(self):
        """Give the cohort a new webhook URL token; the old URL then answers 404."""
        self.webhook_key = new_webhook_key()
        self.save(update_fields=["webhook_key"])

    def rotate_webhook_secret(self):
        """Give the cohort a new signing secret; deliveries signed with the old one get 403."""
        self.webhook_secret = new_webhook_secret()
        self.save(update_fields=["webhook_secret"])

    @property
    def calcom_api_key_hint(self):
        """Return the API key masked to its last four characters ("…a1b2"), or "" when none is set."""
        key = self.calcom_api_key or ""
        return f"…{key[-4:]}" if key else ""

    def set_calcom_api_key(self, key):
        """Store `key` (plain text; "" removes it), encrypted."""
        self.calcom_api_key = (key or "").strip()
        self.save(update_fields=["calcom_api_key"])

    def webhook_path(self, provider="calcom"):
        """Return the path `provider` ("calcom", "calendly", "cronofy") posts to, with its
        trailing slash (PROTOCOL.md §5: a redirect is a failed delivery)."""
        from django.urls import reverse

        return reverse(f"scheduling:{provider}_webhook", args=[self.webhook_key])


def bump_cohort_version(cohort_id):
    """Mark that something the Applications tab of cohort `cohort_id` (an int) shows changed.

    One conditional-free `UPDATE cohort SET version = version + 1`, run after the
    current transaction commits (at once outside one): holding the cohort's row lock
    for the rest of a webhook's transaction would queue every delivery of the
    cohort behind it, and could deadlock with the application locks taken later.
    A poll between the commit and the bump sees the old stamp and the next one the
    new: the tab is at most one poll late. Returns None.
    """
    transaction.on_commit(
        lambda: Cohort.objects.filter(pk=cohort_id).update(version=F("version") + 1)
    )
