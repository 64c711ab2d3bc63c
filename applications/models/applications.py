"""Applications (their queryset, status moves, alternate emails) and their status changes."""

import secrets
import zoneinfo

from django.conf import settings
from django.db import connection, models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from scheduling.status import (
    WAITING, CohortArchived, Stage, Status, StatusConflict, check_reopen, check_transition, stage_for,
)
from .cohorts import Cohort, bump_cohort_version


def new_public_id():
    """Return an application's public id, "app_" + 12 hex digits, for `metadata[application_id]`."""
    return f"app_{secrets.token_hex(6)}"


class ApplicationQuerySet(models.QuerySet):
    def for_user(self, user):
        """Return applications in cohorts `user` can see."""
        return self.filter(cohort__in=Cohort.objects.for_user(user))

    def search(self, text):
        """Return applications matching `text`: name or contact email containing it (any case),
        its exact public id, or an alternate email containing it."""
        text = (text or "").strip()
        if not text:
            return self
        # icontains is UPPER(col) LIKE UPPER('%text%') on PostgreSQL; migrations 0004 and
        # 0012 give the three columns a trigram index on exactly that expression. The
        # public id is matched whole (its unique index). Alternate emails come in as an
        # array of ids, not EXISTS: a correlated EXISTS in the OR made PostgreSQL filter
        # every application of the cohort (80 ms for a miss at 100,000, bench/orphan_search.py);
        # with every arm indexed it is one BitmapOr (3 ms). A search never duplicates rows.
        alternates = ApplicationEmail.objects.filter(email__icontains=text).values("application_id")
        return self.filter(
            models.Q(applicant_name__icontains=text) | models.Q(contact_email__icontains=text)
            | models.Q(public_id__in={text, text.lower()}) | _pk_in(alternates)
        )

    def status_counts(self):
        """Return {status value: number of applications} for this queryset (one GROUP BY query)."""
        # COUNT(*), not COUNT(id): PostgreSQL can then answer from the (cohort, status) index alone.
        rows = self.order_by().values_list("status").annotate(n=models.Count("*"))
        return dict(rows)

    def with_email(self, email, *, cohort):
        """Return `cohort`'s applications whose contact email or an alternate email is `email` (normalised).

        `cohort` is a Cohort. On PostgreSQL one query, two index lookups: `pk = ANY(ARRAY(contact match UNION ALL
        alternate matches))`, an InitPlan run once, then the rows by primary key.
        Not `contact_email = … OR pk IN (subquery)`, which makes PostgreSQL filter
        every application of the cohort (bench/apply_cost.py); not that OR with an
        array either: with `ORDER BY pk LIMIT 2` the planner walks the primary key
        and filters the cohort (tests/test_resilience.py); not `pk IN (… UNION ALL
        …)`, which the planner may run once per application of a freshly imported
        cohort without statistics (one second per match at 2,000). The array is one
        line of SQL rather than two nested querysets: compiling those cost 0.8 ms
        of Python on every webhook matched by email (issue 15). Elsewhere (SQLite),
        plain `pk IN (… UNION ALL …)`.
        """
        email = normalize_email(email)
        if connection.vendor != "postgresql":
            contact = Application.objects.filter(cohort=cohort, contact_email=email).values("pk")
            alternates = ApplicationEmail.objects.filter(email=email).values("application_id")
            return self.filter(cohort=cohort).filter(pk__in=contact.union(alternates, all=True))
        ids = models.expressions.RawSQL(
            f"ARRAY(SELECT id FROM {Application._meta.db_table} WHERE cohort_id = %s AND contact_email = %s "
            f"UNION ALL SELECT application_id FROM {ApplicationEmail._meta.db_table} WHERE email = %s)",
            [cohort.pk, email, email])
        return self.filter(_EqualsAny(models.F("pk"), ids), cohort=cohort)


def _pk_in(ids):
    """Return a filter "pk is one of `ids`" (a one-column queryset of ids) that PostgreSQL indexes.

    On PostgreSQL `pk = ANY(ARRAY(ids))`: the ids are read once (an InitPlan) and
    looked up in the primary key, also as one arm of an OR (a BitmapOr). `pk IN
    (subquery)` is a hashed subplan there, which an OR cannot combine with an
    index: the whole cohort is filtered. Elsewhere (SQLite) plain `pk IN (ids)`.
    """
    if connection.vendor != "postgresql":
        return models.Q(pk__in=ids)
    from django.contrib.postgres.expressions import ArraySubquery

    return _EqualsAny(models.F("pk"), ArraySubquery(ids))


class _EqualsAny(models.Lookup):
    """`lhs = ANY(rhs)` with an array on the right (PostgreSQL)."""

    lookup_name = "equals_any"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def normalize_email(email):
    """Return `email` trimmed and lower-cased, the form every stored email is compared in."""
    return (email or "").strip().lower()


class Application(models.Model):
    cohort = models.ForeignKey(Cohort, models.PROTECT, related_name="applications")
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
    # Where the current interview came from (scheduling.Booking.Kind: "calcom", "offline",
    # "applicant"), and whether it is an applicant's word no admin has confirmed yet.
    interview_kind = models.CharField(max_length=16, blank=True)
    interview_unverified = models.BooleanField(default=False)
    # The round of the current interview's event type (InterviewRound.event_types); null: unknown.
    interview_round = models.PositiveSmallIntegerField(null=True, blank=True)
    # Who interviews, where (when not a link), and whether the applicant missed it:
    # copied from the current booking for the tab's Pipeline column.
    interview_organizer = models.CharField(max_length=200, blank=True)
    interview_location = models.CharField(max_length=300, blank=True)
    interview_no_show = models.BooleanField(default=False)

    # A booking waiting for the host's confirmation (BOOKING_REQUESTED).
    pending_booking_uid = models.CharField(max_length=64, blank=True)
    pending_start = models.DateTimeField(null=True, blank=True)
    pending_end = models.DateTimeField(null=True, blank=True)

    # The host used "Request reschedule" on the current booking (PROTOCOL.md §3, edge 1).
    reschedule_requested = models.BooleanField(default=False)
    reschedule_reason = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # When the application entered its current status (move_to sets it); empty: since
    # `created_at` (rows imported in their status). Webhooks that leave the status alone
    # never touch it, so "Waiting 12 days" counts from the right day.
    status_changed_at = models.DateTimeField(null=True, blank=True)

    objects = ApplicationQuerySet.as_manager()
    # Saves (the Django admin, commands, imports) are recorded; move_to and the schedule sync
    # write with UPDATE and are told by StatusChange and the timeline instead.
    history = HistoricalRecords()

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
        bump_cohort_version(self.cohort_id)

    def move_to(self, new, *, delivery=None, user=None, note="", reopen=False, fields=None):
        """Move to status `new` and record why; the only writer of `status`.

        Pass the cause: `delivery` (a scheduling.WebhookDelivery) or `user` (the
        admin); `note` says more ("matched by …"). Checks the transition table,
        updates with a conditional UPDATE on the status this instance holds, syncs
        `current_stage` and writes a StatusChange. `fields` ({name: value}) are other
        columns written by the same UPDATE (the schedule that causes the move) and
        set on this instance. Returns the StatusChange.
        Raises InvalidTransition when the table forbids the move (CohortArchived, a
        kind of it, when the cohort is archived) and StatusConflict when the row's
        status changed since this instance was read.

        `reopen=True` is an org admin reopening a decision (REOPEN in
        scheduling/status.py, the only way out of a closed status): it needs `user`
        and a `note` giving the reason, else raises ValueError.
        """
        old = self.status
        if self.cohort.is_archived:
            # Here, not in each view: every writer of status (views, admin actions, scripts) meets it.
            raise CohortArchived(self.cohort.name, old, new)
        if reopen:
            if user is None or not note.strip():
                raise ValueError("Reopening a decision needs the admin and a reason.")
            check_reopen(old, new)
            note = f"Reopened: {note.strip()}"
        else:
            check_transition(old, new)
        now = timezone.now()
        stage = stage_for(new)
        fields = {**(fields or {}), "status": new, "current_stage": stage, "updated_at": now,
                  "status_changed_at": now}
        updated = Application.objects.filter(pk=self.pk, status=old).update(**fields)
        if updated != 1:
            raise StatusConflict(old, new)
        for name, value in fields.items():
            setattr(self, name, value)
        bump_cohort_version(self.cohort_id)
        change = StatusChange.objects.create(
            application=self, old_status=old, new_status=new, created_at=now,
            delivery=delivery, user=user, note=note[:500],
        )
        # rounds.all(): the cohort's rounds are already read when a webhook brought the cohort.
        if new in WAITING and any(r.auto_invite for r in self.cohort.rounds.all()):
            # Entering a waiting status is what automatic invitations react to, whatever moved
            # the application (an admin, a cancelled booking): move_to is the one writer of status,
            # so it is the one place that sees every entry. The task checks the round itself.
            from scheduling.tasks import send_automatic_invitation

            send_automatic_invitation.delay_on_commit(change.pk)
        return change

    def allowed_statuses(self):
        """Return the statuses this application may move to next (list of Status)."""
        from scheduling.status import allowed_next

        return allowed_next(self.status)

    def reopen_statuses(self):
        """Return the statuses an org admin may reopen this decision to (empty unless closed)."""
        from scheduling.status import reopen_choices

        return reopen_choices(self.status)

    def reopen_default(self):
        """Return the status the decision was taken from, when it may be reopened to it, else None."""
        allowed = self.reopen_statuses()
        entered = (self.status_changes.filter(new_status=self.status)
                   .values_list("old_status", flat=True).first())
        return entered if entered in allowed else None

    @property
    def status_label(self):
        return Status(self.status).label

    @property
    def round(self):
        """Return the interview round the application is in (1 or 2), or None outside them."""
        return {Stage.FIRST_ROUND: 1, Stage.SECOND_ROUND: 2}.get(self.current_stage)

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
    def status_since(self):
        """Return when the application entered its status (aware UTC)."""
        return self.status_changed_at or self.created_at


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

    # An application with history cannot be deleted: the audit outlives nothing it explains.
    application = models.ForeignKey(Application, models.PROTECT, related_name="status_changes")
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
        # The timeline pages an application's changes newest first (applications.timeline).
        indexes = [models.Index(fields=["application", "-created_at", "-id"], name="statuschange_app_created")]

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
