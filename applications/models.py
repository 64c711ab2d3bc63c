"""Organizations, their cohorts, and the applications whose interviews we schedule."""

import secrets
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify

from scheduling.status import (
    SCHEDULED, WAITING, Stage, Status, StatusConflict, check_transition, stage_for,
)


def new_webhook_key():
    """Return an unguessable URL-safe token (32 characters) for a cohort's webhook URL."""
    return secrets.token_urlsafe(24)


def new_webhook_secret():
    """Return a random signing secret (43 characters) to paste into Cal.com's webhook form."""
    return secrets.token_urlsafe(32)


def new_public_id():
    """Return an application's public id, "app_" + 12 hex digits, for `metadata[application_id]`."""
    return f"app_{secrets.token_hex(6)}"


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA name; the default for members' views."
    )

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


def time_zone_or_utc(name):
    """Return the ZoneInfo called `name`, or UTC when the name is empty or unknown."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


class UserSettings(models.Model):
    """A user's own preferences; a missing row means every default."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="app_settings"
    )
    time_zone = models.CharField(
        max_length=64, blank=True,
        help_text="IANA name for showing dates; empty: each organization's own time zone.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "user settings"

    def __str__(self):
        return f"Settings of {self.user}"

    @classmethod
    def time_zone_for(cls, user, organization):
        """Return the ZoneInfo `user` reads `organization`'s dates in (their setting, else the org's)."""
        name = cls.objects.filter(user=user).values_list("time_zone", flat=True).first()
        return time_zone_or_utc(name or organization.time_zone)


class CohortQuerySet(models.QuerySet):
    def for_user(self, user):
        """Return the cohorts of organizations `user` is a member of (none for anonymous users)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)


class Cohort(models.Model):
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="cohorts")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, blank=True)
    webhook_key = models.CharField(max_length=64, unique=True, default=new_webhook_key)
    webhook_secret = models.CharField(max_length=128, default=new_webhook_secret)
    created_at = models.DateTimeField(default=timezone.now)

    objects = CohortQuerySet.as_manager()

    def __str__(self):
        return self.name

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

    def webhook_path(self):
        """Return the path Cal.com posts to, with its trailing slash (PROTOCOL.md §5)."""
        from django.urls import reverse

        return reverse("scheduling:calcom_webhook", args=[self.webhook_key])


class ApplicationQuerySet(models.QuerySet):
    def for_user(self, user):
        """Return applications in cohorts `user` can see."""
        return self.filter(cohort__in=Cohort.objects.for_user(user))

    def search(self, text):
        """Return applications whose name or contact email contains `text`, ignoring case."""
        text = (text or "").strip()
        if not text:
            return self
        # icontains is UPPER(col) LIKE UPPER('%text%') on PostgreSQL; migration 0004
        # gives both columns a trigram index on exactly that expression.
        return self.filter(
            models.Q(applicant_name__icontains=text) | models.Q(contact_email__icontains=text)
        )

    def with_status_since(self):
        """Annotate `status_since`: when the application entered its current status.

        That is the newest StatusChange into the current status, or `updated_at` for
        rows that never went through `move_to` (imports, the demo). A correlated
        subquery, so a page of 50 rows costs one query, not 51.
        """
        entered = (
            StatusChange.objects.filter(application=models.OuterRef("pk"), new_status=models.OuterRef("status"))
            .order_by("-created_at")
            .values("created_at")[:1]
        )
        return self.annotate(status_since=Coalesce(models.Subquery(entered), "updated_at"))

    def status_counts(self):
        """Return {status value: number of applications} for this queryset (one GROUP BY query)."""
        # COUNT(*), not COUNT(id): PostgreSQL can then answer from the (cohort, status) index alone.
        rows = self.order_by().values_list("status").annotate(n=models.Count("*"))
        return dict(rows)

    def with_email(self, email):
        """Return applications whose contact email or an alternate email is `email` (normalised).

        Two indexed queries, not one: `contact_email = … OR pk IN (subquery)` makes
        PostgreSQL filter every application of the cohort (bench/apply_cost.py).
        """
        email = normalize_email(email)
        alternates = list(
            ApplicationEmail.objects.filter(email=email, application__in=self)
            .values_list("application_id", flat=True)[:10]
        )
        return self.filter(models.Q(contact_email=email) | models.Q(pk__in=alternates))


def normalize_email(email):
    """Return `email` trimmed and lower-cased, the form every stored email is compared in."""
    return (email or "").strip().lower()


class Application(models.Model):
    cohort = models.ForeignKey(Cohort, models.CASCADE, related_name="applications")
    public_id = models.CharField(
        max_length=64, unique=True, default=new_public_id,
        help_text="Passed to Cal.com as ?metadata[application_id]=…",
    )
    applicant_name = models.CharField(max_length=200)
    contact_email = models.EmailField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.NEW)
    current_stage = models.CharField(max_length=32, choices=Stage.choices, default=Stage.INTAKE)

    # The current confirmed interview (aware UTC); empty when nothing is scheduled.
    interview_start = models.DateTimeField(null=True, blank=True)
    interview_end = models.DateTimeField(null=True, blank=True)
    interview_meeting_url = models.URLField(max_length=500, blank=True)
    interview_booking_uid = models.CharField(max_length=64, blank=True)
    interview_time_zone = models.CharField(max_length=64, blank=True)
    interview_event_type = models.CharField(max_length=200, blank=True)
    interview_ended_at = models.DateTimeField(null=True, blank=True)

    # A booking waiting for the host's confirmation (BOOKING_REQUESTED).
    pending_booking_uid = models.CharField(max_length=64, blank=True)
    pending_start = models.DateTimeField(null=True, blank=True)
    pending_end = models.DateTimeField(null=True, blank=True)

    # The host used "Request reschedule" on the current booking (PROTOCOL.md §3, edge 1).
    reschedule_requested = models.BooleanField(default=False)
    reschedule_reason = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["cohort", "contact_email"], name="application_cohort_email"),
            models.Index(fields=["cohort", "status"], name="application_cohort_status"),
            models.Index(fields=["cohort", "-updated_at"], name="application_cohort_updated"),
            models.Index(fields=["cohort", "interview_start"], name="application_cohort_start"),
            models.Index(fields=["cohort", "applicant_name"], name="application_cohort_name"),
        ]

    def __str__(self):
        return f"{self.applicant_name} <{self.contact_email}>"

    def save(self, *args, **kwargs):
        self.contact_email = normalize_email(self.contact_email)
        if self._state.adding:
            self.current_stage = stage_for(self.status)
        super().save(*args, **kwargs)

    def move_to(self, new, *, delivery=None, user=None, note=""):
        """Move to status `new` and record why; the only writer of `status`.

        Pass the cause: `delivery` (a scheduling.WebhookDelivery) or `user` (the
        admin); `note` says more ("matched by …"). Checks the transition table,
        updates with a conditional UPDATE on the status this instance holds, syncs
        `current_stage` and writes a StatusChange. Returns that StatusChange.
        Raises InvalidTransition when the table forbids the move and StatusConflict
        when the row's status changed since this instance was read.
        """
        old = self.status
        check_transition(old, new)
        now = timezone.now()
        stage = stage_for(new)
        updated = Application.objects.filter(pk=self.pk, status=old).update(
            status=new, current_stage=stage, updated_at=now
        )
        if updated != 1:
            raise StatusConflict(old, new)
        self.status, self.current_stage, self.updated_at = new, stage, now
        return StatusChange.objects.create(
            application=self, old_status=old, new_status=new, created_at=now,
            delivery=delivery, user=user, note=note[:500],
        )

    def allowed_statuses(self):
        """Return the statuses this application may move to next (list of Status)."""
        from scheduling.status import allowed_next

        return allowed_next(self.status)

    @property
    def status_label(self):
        return Status(self.status).label

    @property
    def round(self):
        """Return the interview round the application is in (1 or 2), or None outside them."""
        return {Stage.FIRST_ROUND: 1, Stage.SECOND_ROUND: 2}.get(self.current_stage)

    @property
    def pipeline(self):
        """Return what the Pipeline column shows for this row.

        One of "reschedule" (the host asked for a new time), "scheduled", "pending"
        (nothing confirmed, a booking awaits the host's confirmation), "awaiting" or
        "" (nothing to schedule). A host's request outranks everything: it is what the
        admin has to act on. A confirmed interview outranks a pending one, which the
        column then shows beside it.
        """
        if self.reschedule_requested:
            return "reschedule"
        if self.status in SCHEDULED and self.interview_start:
            return "scheduled"
        if self.pending_booking_uid:
            return "pending"
        if self.status in WAITING:
            return "awaiting"
        return ""

    @property
    def interview_is_past(self):
        """Return True when the current interview has started already."""
        return self.interview_start is not None and self.interview_start <= timezone.now()

    @property
    def applicant_zone(self):
        """Return the ZoneInfo the applicant booked in, or None when unknown or not a zone."""
        try:
            return zoneinfo.ZoneInfo(self.interview_time_zone) if self.interview_time_zone else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None

    @property
    def days_in_status(self):
        """Return whole days since the application entered its status.

        Uses the `status_since` annotation (ApplicationQuerySet.with_status_since)
        when present, else `updated_at`.
        """
        since = getattr(self, "status_since", None) or self.updated_at
        return max((timezone.now() - since).days, 0)


class ApplicationEmail(models.Model):
    """Another address an applicant books with; bookings from it match the application."""

    application = models.ForeignKey(Application, models.CASCADE, related_name="alternate_emails")
    email = models.EmailField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "email"], name="one_alternate_email")
        ]

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.email


class StatusChange(models.Model):
    """One status change of an application: old, new, when, and its cause."""

    application = models.ForeignKey(Application, models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=32, choices=Status.choices)
    new_status = models.CharField(max_length=32, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Cause: the webhook delivery that moved it, or the admin who did.
    delivery = models.ForeignKey(
        "scheduling.WebhookDelivery", models.SET_NULL, null=True, blank=True,
        related_name="status_changes",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.old_status} → {self.new_status}"

    @property
    def cause(self):
        """Return a human description of what caused this change."""
        if self.delivery_id:
            return self.note or f"Cal.com webhook delivery #{self.delivery_id}"
        if self.user_id:
            return self.note or f"Changed by {self.user}"
        return self.note or "System"
