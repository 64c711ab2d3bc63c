"""Stored webhook deliveries and the bookings they describe (Cal.com, Calendly, Cronofy)."""

import json
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from . import templating


class Provider(models.TextChoices):
    CALCOM = "calcom", "Cal.com"
    CALENDLY = "calendly", "Calendly"
    CRONOFY = "cronofy", "Cronofy"


class Outcome(models.TextChoices):
    RECEIVED = "received", "Received"  # stored, not yet applied (or the apply crashed)
    APPLIED = "applied", "Applied"
    ORPHANED = "orphaned", "Orphaned"
    IGNORED = "ignored", "Ignored"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"


# Outcomes after which a redelivery of the same body has nothing left to do.
SETTLED = frozenset({Outcome.APPLIED, Outcome.ORPHANED, Outcome.IGNORED, Outcome.DUPLICATE,
                     Outcome.REJECTED})


class MatchRule(models.TextChoices):
    LINK = "link", "Link reference"
    PUBLIC_ID = "public_id", "Public id (old link)"
    CHAIN = "chain", "Booking chain"
    EMAIL = "email", "Email"
    MANUAL = "manual", "Manual match"


class WebhookDelivery(models.Model):
    """One verified POST from a provider, stored (raw bytes) before it is applied."""

    # Deliveries are evidence: neither a cohort's nor an application's deletion takes them.
    cohort = models.ForeignKey("applications.Cohort", models.PROTECT, related_name="deliveries")
    # Which parser reads the stored body (ingest dispatches on it).
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.CALCOM)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    body = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    trigger_event = models.CharField(max_length=64, blank=True)
    booking_uid = models.CharField(max_length=64, blank=True, db_index=True)
    event_created_at = models.DateTimeField(null=True, blank=True)
    # trigger + uid + createdAt (+ seat, + provider): the event's identity across
    # re-serialisation (PROTOCOL.md §5).
    logical_key = models.CharField(max_length=200, null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RECEIVED)
    detail = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweep may try again (scheduling.ingest.sweep_deliveries); null: as soon as it is due.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    redeliveries = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    application = models.ForeignKey(
        "applications.Application", models.PROTECT, null=True, blank=True,
        related_name="deliveries",
    )
    duplicate_of = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="duplicates"
    )
    # Which rule tied the delivery to its application (sync health answers "why did this change?").
    match_rule = models.CharField(max_length=16, choices=MatchRule.choices, blank=True)
    # Something the admin should look at even though the delivery applied: a forged link
    # reference, a booking of the other round's event type. A sentence; empty when all is well.
    attention = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "sha256"], name="delivery_unique_body"),
            models.UniqueConstraint(
                fields=["cohort", "logical_key"], condition=models.Q(logical_key__isnull=False),
                name="delivery_unique_event",
            ),
        ]
        indexes = [models.Index(fields=["outcome", "received_at"], name="delivery_outcome")]

    def __str__(self):
        return f"#{self.pk} {self.get_provider_display()} {self.trigger_event or '?'} {self.booking_uid} ({self.outcome})"

    @property
    def body_bytes(self):
        return bytes(self.body)

    def pretty_body(self):
        """Return the body as indented JSON, or as text when it is not JSON."""
        raw = self.body_bytes
        try:
            return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
        except (ValueError, RecursionError):
            return raw.decode("utf-8", errors="replace")


class BookingQuerySet(models.QuerySet):
    def linked_to(self, uid, *, reschedule_uid="", ical_uid="", attendee_key="", rescheduled_to_uid=""):
        """Return the bookings next to booking `uid` in its reschedule chain, itself included.

        That is the booking it replaced (`reschedule_uid`, Cal.com's rescheduleUid), those
        that replaced it (or `rescheduled_to_uid`, Calendly's new_invitee), and those
        sharing its `ical_uid` (stable across reschedules, §3). Seats of one slot share
        uid and iCalUID, so only bookings of the same `attendee_key` are linked (§3-4).
        """
        uids = [u for u in (uid, reschedule_uid, rescheduled_to_uid) if u]
        query = Q(uid__in=uids) | Q(reschedule_uid=uid) | Q(rescheduled_to_uid=uid)
        if ical_uid:
            query |= Q(ical_uid=ical_uid)
        return self.filter(query, attendee_key=attendee_key)

    def of_event(self, event):
        """Return the bookings linked to BookingEvent `event` (see linked_to)."""
        return self.linked_to(event.uid, reschedule_uid=event.reschedule_uid, ical_uid=event.ical_uid,
                              attendee_key=event.attendee_key,
                              rescheduled_to_uid=event.rescheduled_to_uid)

    def unmatched_chain(self, booking, *, limit=50):
        """Return [`booking`] plus the unmatched bookings of its chain, followed transitively.

        Only bookings with no application are followed: one another application owns
        is not ours to take. Rows are locked (select_for_update); `limit` bounds a
        pathological chain (real ones are a handful of reschedules).
        """
        found = {booking.pk: booking}
        frontier = [booking]
        while frontier and len(found) < limit:
            current = frontier.pop()
            strays = (
                self.select_for_update()
                .linked_to(current.uid, reschedule_uid=current.reschedule_uid, ical_uid=current.ical_uid,
                           attendee_key=current.attendee_key,
                           rescheduled_to_uid=current.rescheduled_to_uid)
                .filter(cohort_id=booking.cohort_id, application__isnull=True)
                .exclude(pk__in=list(found))
            )
            for other in strays:
                found[other.pk] = other
                frontier.append(other)
        return list(found.values())


class Booking(models.Model):
    """What we know of one booking (`uid`, and a seat's `attendee_key`), merged from every event.

    `state` and the schedule follow the newest event by (createdAt, iCalSequence),
    so deliveries can arrive in any order. `application` is null for a booking we
    could not match (its orphaned interview points at it). A seated slot (§3-4) is one
    uid with one Booking per attendee, each its own applicant's interview.
    """

    class State(models.TextChoices):
        UNKNOWN = "", "Unknown"
        ACCEPTED = "accepted", "Accepted"
        PENDING = "pending", "Pending confirmation"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"

    class Kind(models.TextChoices):
        """Where the booking comes from: a provider's webhook, or recorded by hand in Cohort-OS."""

        CALCOM = "calcom", "Cal.com"
        CALENDLY = "calendly", "Calendly"
        CRONOFY = "cronofy", "Cronofy"
        OFFLINE = "offline", "Scheduled offline"  # an admin recorded it (phone, email, …)
        APPLICANT = "applicant", "Confirmed by the applicant"  # "I've booked" on their page

    cohort = models.ForeignKey("applications.Cohort", models.PROTECT, related_name="bookings")
    application = models.ForeignKey(
        "applications.Application", models.PROTECT, null=True, blank=True,
        related_name="bookings",
    )
    uid = models.CharField(max_length=64)
    attendee_key = models.CharField(
        max_length=254, blank=True, help_text="The seat's attendee email in a seated slot; empty otherwise.")
    ical_uid = models.CharField(max_length=200, blank=True)
    reschedule_uid = models.CharField(max_length=64, blank=True, help_text="The booking this one replaced.")
    rescheduled_to_uid = models.CharField(
        max_length=64, blank=True, help_text="The booking that replaced this one, when the provider says so.")
    state = models.CharField(max_length=16, choices=State.choices, blank=True, default=State.UNKNOWN)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    meeting_url = models.URLField(max_length=500, blank=True)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=200, blank=True)
    # The interviewer, and how a team event picked them.
    organizer_name = models.CharField(max_length=200, blank=True)
    organizer_email = models.EmailField(blank=True)
    organizer_time_zone = models.CharField(max_length=64, blank=True)
    team = models.CharField(max_length=200, blank=True)
    scheduling_type = models.CharField(max_length=32, blank=True)
    assignment_reason = models.CharField(max_length=500, blank=True)
    # The organizer's own booking questions: [[label, answer], ...].
    responses = models.JSONField(default=list, blank=True)
    # The interview round its event type belongs to (InterviewRound.event_types); null: not listed.
    round = models.PositiveSmallIntegerField(null=True, blank=True)
    request_reschedule = models.BooleanField(default=False)
    reason = models.TextField(blank=True, help_text="Why it was cancelled or rejected.")
    reschedule_reason = models.TextField(blank=True)
    rescheduled_by = models.CharField(max_length=254, blank=True)
    cancelled_by = models.CharField(max_length=254, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who missed the meeting (None: nobody said); set and unset by the no-show triggers.
    no_show = models.BooleanField(null=True, blank=True, help_text="The applicant missed it.")
    no_show_host = models.BooleanField(null=True, blank=True, help_text="The interviewer missed it.")
    no_show_at = models.DateTimeField(null=True, blank=True)
    # createdAt of the newest place or interviewer change applied (they have their own clock).
    details_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CALCOM)
    # The provider's own pages for the booker (Cal.com: built from bookerUrl and uid).
    reschedule_url = models.URLField(max_length=500, blank=True)
    cancel_url = models.URLField(max_length=500, blank=True)
    # Where it happens when it is not a link (a provider's non-URL location: an address, a
    # phone number, "Office 3B"; or what an admin typed for an offline interview).
    location = models.CharField(max_length=300, blank=True)
    # Offline and applicant bookings: the admin's note.
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # An applicant's own word is unverified until an admin confirms it (or a provider booking
    # replaces it): then these say who and when.
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The newest state-changing event applied: its createdAt and iCalSequence.
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_sequence = models.IntegerField(default=-1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = BookingQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cohort", "uid", "attendee_key"], name="booking_unique_seat"),
            # "I've booked" sent twice (or from two tabs at once) updates the one claim.
            models.UniqueConstraint(
                fields=["application"], name="one_live_applicant_claim",
                condition=models.Q(kind="applicant", state="accepted"),
            ),
        ]
        indexes = [
            models.Index(fields=["cohort", "ical_uid"], name="booking_cohort_ical"),
            models.Index(fields=["cohort", "reschedule_uid"], name="booking_cohort_reschedule"),
            models.Index(fields=["cohort", "rescheduled_to_uid"], name="booking_cohort_rescheduled_to"),
        ]

    def __str__(self):
        seat = f" seat {self.attendee_key}" if self.attendee_key else ""
        return f"{self.uid}{seat} ({self.get_state_display()})"

    @property
    def organizer(self):
        """Return the interviewer as one line: "Name <email>", or "" when unknown."""
        if self.organizer_name and self.organizer_email:
            return f"{self.organizer_name} <{self.organizer_email}>"
        return self.organizer_name or self.organizer_email

    @property
    def unverified(self):
        """Return True for an applicant's self-reported booking no admin has confirmed yet."""
        return self.kind == self.Kind.APPLICANT and self.verified_at is None

    @property
    def by_hand(self):
        """Return True when the booking was recorded in Cohort-OS, not received from a provider."""
        return self.kind in (self.Kind.OFFLINE, self.Kind.APPLICANT)


def new_applicant_key():
    """Return an applicant-page token: 32 random bytes (256 bits), URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class ApplicantTokenQuerySet(models.QuerySet):
    def usable(self, *, now=None):
        """Return tokens neither revoked nor expired at `now` (aware; default: now)."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class ApplicantToken(models.Model):
    """The secret in an applicant's page URL, `/i/<key>/`: one application, no login.

    At most one token per application is live (not revoked); it is reused by every
    invitation and reminder until it expires or an admin revokes it, and the next
    invitation then issues a new one (scheduling.applicant.token_for).
    """

    application = models.ForeignKey(
        "applications.Application", models.CASCADE, related_name="applicant_tokens"
    )
    key = models.CharField(max_length=64, unique=True, default=new_applicant_key)
    created_at = models.DateTimeField(default=timezone.now)
    # created_at + settings.APPLICANT_PAGE_DAYS (default 90), set on the first save.
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set by an admin's revoke, or when an expired token is replaced (revoked_by empty).
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ApplicantTokenQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["application"], condition=models.Q(revoked_at__isnull=True),
                name="one_live_applicant_token",
            )
        ]

    def __str__(self):
        # Never the key itself: it is the applicant's password.
        return f"Applicant link of {self.application_id} (…{self.key[-4:]})"

    def save(self, *args, **kwargs):
        if self.expires_at is None:
            self.expires_at = self.created_at + timedelta(days=settings.APPLICANT_PAGE_DAYS)
        super().save(*args, **kwargs)

    def is_usable(self, now=None):
        """Return True when the token is neither revoked nor expired at `now`."""
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class ScheduleChange(models.Model):
    """One line of an application's history about its schedule, kept even when the status stays.

    Written by the offline scheduling and applicant confirmation services
    (scheduling/handmade.py); status moves they cause also get their StatusChange.
    """

    class Action(models.TextChoices):
        OFFLINE_SCHEDULED = "offline_scheduled", "Scheduled offline"
        OFFLINE_EDITED = "offline_edited", "Offline interview changed"
        OFFLINE_CLEARED = "offline_cleared", "Offline interview cleared"
        APPLICANT_BOOKED = "applicant_booked", "Applicant says booked"
        APPLICANT_UPDATED = "applicant_updated", "Applicant changed their booking"
        APPLICANT_CONFIRMED = "applicant_confirmed", "Applicant's booking confirmed"
        APPLICANT_REPLACED = "applicant_replaced", "Applicant's booking replaced by the provider's"
        LINK_REVOKED = "link_revoked", "Applicant page link revoked"

    application = models.ForeignKey(
        "applications.Application", models.CASCADE, related_name="schedule_changes"
    )
    booking = models.ForeignKey(Booking, models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by_applicant = models.BooleanField(default=False)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_action_display()}: {self.detail}"

    @property
    def cause(self):
        """Return who did it, in words: "the applicant", the admin's name, or "the system"."""
        if self.by_applicant:
            return "the applicant"
        if self.user_id:
            return self.user.get_full_name() or self.user.get_username()
        return "the system"


# --- interview rounds and invitations (issue 8) ------------------------------------------


def validate_https(url):
    """Raise ValidationError unless `url` starts with https:// (booking pages are never plain http)."""
    from django.core.exceptions import ValidationError

    if not (url or "").lower().startswith("https://"):
        raise ValidationError("The booking page must be an https:// address.")


def validate_event_types(value):
    """Raise ValidationError unless `value` is a list of event-type slugs (str) or numeric ids (int)."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not all(
        (isinstance(v, str) and v.strip()) or (isinstance(v, int) and not isinstance(v, bool))
        for v in value
    ):
        raise ValidationError("Event types must be a list of Cal.com event-type slugs or numeric ids.")


class InterviewRound(models.Model):
    """How one cohort runs one interview round: where to book, which event types, invitations."""

    class Number(models.IntegerChoices):
        FIRST = 1, "First round"
        SECOND = 2, "Second round"

    cohort = models.ForeignKey("applications.Cohort", models.PROTECT, related_name="rounds")
    number = models.PositiveSmallIntegerField(choices=Number.choices)
    booking_url = models.URLField(
        max_length=500, validators=[validate_https],
        help_text="The round's public booking page: Cal.com, Calendly or a Google appointment page.",
    )
    # As they arrive in Cal.com's payload.type (slug) and payload.eventTypeId (int), PROTOCOL.md §2.
    event_types = models.JSONField(default=list, blank=True, validators=[validate_event_types])
    auto_invite = models.BooleanField(default=False)
    remind_after_days = models.PositiveSmallIntegerField(null=True, blank=True)
    max_reminders = models.PositiveSmallIntegerField(default=2)
    book_within_days = models.PositiveSmallIntegerField(
        null=True, blank=True, default=7,
        help_text="The invitation's {{ deadline }}: this many days after it is sent; empty for none.",
    )
    invitation_subject = models.CharField(max_length=300, default=templating.DEFAULT_SUBJECT)
    invitation_body = models.TextField(default=templating.DEFAULT_BODY)
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["cohort", "number"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "number"], name="round_unique_number"),
            models.CheckConstraint(condition=models.Q(number__in=[1, 2]), name="round_number_1_or_2"),
        ]

    def __str__(self):
        return f"{self.cohort} round {self.number}"

    def holds_event_type(self, slug, type_id):
        """Return True when Cal.com event-type `slug` (str) or id (str/int) is in `event_types`."""
        listed = {str(v).strip().lower() for v in self.event_types}
        return bool(slug and slug.strip().lower() in listed) or bool(
            type_id not in (None, "") and str(type_id).strip() in listed
        )


class Invitation(models.Model):
    """One email asking an applicant to book a round: an invitation, a resend or a reminder.

    The unique constraint is the "at most once" rule: per application, round and
    entry into the waiting status (`entry`) there is one first invitation and one
    reminder of each number; an explicit resend (`is_resend`) is outside it.
    """

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        REMINDER = "reminder", "Reminder"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        MANUAL = "manual", "Sent by an admin"
        AUTOMATIC = "automatic", "Automatic on entry"
        SCHEDULE = "schedule", "Reminder schedule"
        COMMAND = "command", "Command line"

    # An application with invitations has history: it is not deleted (issue 13).
    application = models.ForeignKey("applications.Application", models.PROTECT,
                                    related_name="invitations")
    round = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INVITATION)
    # Which entry into the waiting status this is about: "sc<StatusChange pk>", or "initial" for
    # an application created in the status (imports, the demo) that never moved since.
    entry = models.CharField(max_length=32)
    reminder_number = models.PositiveSmallIntegerField(default=0)
    is_resend = models.BooleanField(default=False)
    is_rebooking = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                related_name="+")
    to_email = models.EmailField()
    booking_link = models.URLField(max_length=2000)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "round", "entry", "kind", "reminder_number"],
                condition=models.Q(is_resend=False), name="invitation_once_per_entry",
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="invitation_state")]

    def __str__(self):
        return f"{self.get_kind_display()} round {self.round} to {self.to_email} ({self.state})"

    @property
    def sent_by_label(self):
        """Return who sent it: the admin's name, or how it was sent when no person did."""
        if self.sent_by_id:
            return str(self.sent_by)
        return self.get_source_display()


class SyncRun(models.Model):
    """One reconciliation of a cohort against Cal.com's API (scheduling/sync.py).

    At most one run per cohort is `running` (a partial unique constraint): that
    row is the lock. Progress (pages fetched, bookings checked) is written as the
    run goes, for the progress bar; the drift it fixed is in `drift` (SyncDrift).
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Sync now"
        SCHEDULED = "scheduled", "Scheduled"
        COMMAND = "command", "Command line"

    cohort = models.ForeignKey("applications.Cohort", models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Bookings created or updated since this moment were fetched (aware UTC).
    window_start = models.DateTimeField(null=True, blank=True)
    pages_fetched = models.PositiveIntegerField(default=0)
    bookings_checked = models.PositiveIntegerField(default=0)
    changes_made = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort"], condition=Q(status="running"), name="one_running_sync_per_cohort",
            ),
        ]

    def __str__(self):
        return f"Sync #{self.pk} of {self.cohort} ({self.status})"

    @property
    def is_running(self):
        return self.status == self.Status.RUNNING


class SyncDrift(models.Model):
    """One difference a sync found and fixed: what the webhooks missed, as a sentence."""

    run = models.ForeignKey(SyncRun, models.CASCADE, related_name="drift")
    application = models.ForeignKey(
        "applications.Application", models.SET_NULL, null=True, blank=True, related_name="sync_drift",
    )
    booking_uid = models.CharField(max_length=64)
    sentence = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.sentence
