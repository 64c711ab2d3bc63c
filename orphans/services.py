"""Orphaned interviews: recording them, alerting admins, matching, dismissing, suggesting.

Work that spans models lives here; the single-row rules (claiming an alert) are
on OrphanedInterview. The alert flow, and why it is shaped this way:

1. `record_orphan` creates an orphan with alert_state "pending" and, after the
   webhook's transaction commits, publishes `send_orphan_alert` with a countdown
   of ALERT_COALESCE_SECONDS. A broker that is down only logs (orphans.tasks).
2. That task sends every pending alert of the orphan's cohort at once
   (`send_cohort_alerts`): a burst (a mis-set cohort: 50 bookings in a minute)
   has piled up meanwhile and goes out as one digest per admin, because the first
   task to run claims them all and the others find nothing left to claim.
   Coalescing in the task, rather than deciding "burst or not" when each orphan
   arrives, needs no counters and cannot send five single emails before noticing.
3. The beat sweep `send_pending_alerts` sends what is still pending after
   ALERT_GRACE (the publish failed, the task was lost, a retry is overdue) the
   same way, grouped by cohort.
Every send claims each orphan with a conditional UPDATE first, so no orphan is
alerted twice, whichever of these runs, and however often.
"""

import logging
import re
from datetime import timedelta
from smtplib import SMTPException

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from applications.models import Application, ApplicationEmail, Cohort, bump_cohort_version, normalize_email
from scheduling.models import Booking, MatchRule, WebhookDelivery
from scheduling.status import CLOSED, WAITING, Status

from applications import timeline
from applications.audit import snapshot

from .emails import alert_messages, alert_recipients
from .models import OrphanedInterview

logger = logging.getLogger(__name__)

# The sweep leaves an alert to its own task this long (and a failed send this long before
# trying again); past it, the alert is overdue and the sweep sends it.
ALERT_GRACE = timedelta(minutes=2)
# At most one send per cohort in this window: while orphans keep arriving, each admin gets
# one email per cohort per window; what arrives meanwhile waits for the sweep after it.
ALERT_WINDOW = timedelta(minutes=10)


class ChainMatchedMeanwhile(Exception):
    """A booking of this booking's chain got an application after the delivery was matched."""


def record_orphan(cohort, booking, *, reason, delivery=None, application_ref="", previous_uid=""):
    """Record (or refresh) the orphaned interview for an unmatched `booking`; return it.

    One orphan per booking chain: a reschedule of an orphaned booking (its
    `previous_uid`, or a shared iCalUID) moves the existing orphan to the new
    uid and times instead of raising a second alert. `booking` is a
    scheduling.Booking, `reason` an OrphanedInterview.Reason value, `delivery`
    the WebhookDelivery that brought it. Run inside the caller's transaction.
    A new orphan publishes its alert task after commit. Raises
    ChainMatchedMeanwhile when an admin matched the chain while the delivery
    was being applied (the caller matches again).
    """
    details = {
        "ical_uid": booking.ical_uid,
        "email": booking.email,
        "name": booking.name,
        "start": booking.start,
        "end": booking.end,
        "time_zone": booking.time_zone,
        "meeting_url": booking.meeting_url,
        "event_type": booking.event_type,
    }
    orphans = OrphanedInterview.objects.select_for_update().filter(cohort=cohort)
    exact = orphans.filter(booking_uid=booking.uid, attendee_key=booking.attendee_key).first()
    bump_cohort_version(cohort.pk)
    if exact is not None:
        _update(exact, details)
        return exact
    chain = Q(booking_uid=previous_uid) if previous_uid else Q(pk__in=[])
    if booking.ical_uid:
        chain |= Q(ical_uid=booking.ical_uid)
    moved = (orphans.filter(chain, attendee_key=booking.attendee_key, resolved_at__isnull=True)
             .order_by("-created_at").first())
    if moved is not None:
        # Deliveries come in any order: an older booking of the chain arriving late must not
        # pull the orphan back from the booking that replaced it.
        if not Booking.objects.filter(cohort=cohort, reschedule_uid=booking.uid,
                                      attendee_key=booking.attendee_key).exists():
            _update(moved, {**details, "booking_uid": booking.uid})
        return moved
    # The delivery matched nothing, but an admin may have matched the chain since (we waited
    # for their lock above): then this booking is theirs too, and must not become an orphan.
    chain = Booking.objects.linked_to(booking.uid, reschedule_uid=previous_uid or booking.reschedule_uid,
                                      ical_uid=booking.ical_uid, attendee_key=booking.attendee_key,
                                      rescheduled_to_uid=booking.rescheduled_to_uid)
    if chain.filter(cohort=cohort, application__isnull=False).exists():
        raise ChainMatchedMeanwhile(booking.uid)
    orphan, created = OrphanedInterview.objects.get_or_create(
        cohort=cohort, booking_uid=booking.uid, attendee_key=booking.attendee_key,
        defaults={**details, "reason": reason, "delivery": delivery,
                  "application_ref": application_ref[:64]},
    )
    if created:
        from .tasks import ALERT_COALESCE_SECONDS, send_orphan_alert

        # After commit (a rolled-back orphan alerts nobody); never raises (orphans.tasks).
        send_orphan_alert.apply_async_on_commit((orphan.pk,), countdown=ALERT_COALESCE_SECONDS)
    return orphan


def _update(orphan, details):
    for name, value in details.items():
        setattr(orphan, name, value)
    orphan.save(update_fields=list(details))


def close_orphan_for_booking(cohort, booking, application):
    """Resolve the open orphan of `booking` once it no longer needs an admin.

    With an `application` (a later event matched the booking by itself) the
    orphan is marked matched to it; without one, it is dismissed only when the
    booking was cancelled or rejected in Cal.com. Returns the number closed (0 or 1).
    """
    open_orphans = OrphanedInterview.objects.filter(
        cohort=cohort, booking_uid=booking.uid, attendee_key=booking.attendee_key,
        resolved_at__isnull=True,
    )
    now = timezone.now()
    closed = 0
    if application is not None:
        closed = open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.MATCHED,
            application=application,
        )
    elif booking.state in ("cancelled", "rejected"):
        closed = open_orphans.update(
            resolved_at=now, resolution=OrphanedInterview.Resolution.DISMISSED,
            dismiss_reason=f"Booking {booking.state} in {booking.get_kind_display()}",
        )
    if closed:
        bump_cohort_version(cohort.pk)
    return closed


# --- alerts ------------------------------------------------------------------------------


def send_alerts(cohort, orphans, *, now=None):
    """Claim and send the alerts of `orphans` (of `cohort`); return how many orphans went out.

    Each orphan is claimed first (OrphanedInterview.claim_alert); ones another
    sender holds are left alone, resolved ones are marked skipped. The rest go
    to every admin of the cohort's organization in one SMTP session: one email
    each, or one digest when there are more than emails.DIGEST_THRESHOLD.
    Nothing is claimed while the cohort's digest window is closed (a send in the
    last ALERT_WINDOW): those alerts stay pending for the sweep after it.
    On an SMTP error (smtplib.SMTPException, OSError) the claims are released
    with the error recorded (pending again, or failed after ALERT_MAX_ATTEMPTS)
    and the error is raised for the caller to retry. An organization without an
    admin email fails the alerts at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # One sender per cohort at a time decides the window and claims (the row lock queues
        # the others, who then see this send's claims); the email goes out after the commit.
        Cohort.objects.select_for_update().filter(pk=cohort.pk).first()
        if next_alert_at(cohort, now) > now:
            return 0
        claimed = [orphan.pk for orphan in orphans if orphan.claim_alert(now)]
    if not claimed:
        return 0
    # Read again after claiming: a match or dismiss in between must not be announced.
    fresh = list(OrphanedInterview.objects.filter(pk__in=claimed).order_by("created_at", "pk"))
    live = []
    for orphan in fresh:
        if orphan.is_resolved:
            orphan.alert_skipped(now)
        else:
            live.append(orphan)
    if not live:
        return 0
    recipients = alert_recipients(cohort.organization)
    if not recipients:
        for orphan in live:
            orphan.alert_failed(now, f"No admin of {cohort.organization} has an email address.",
                                final=True)
        logger.warning("Orphan alerts for %s: no admin to send them to", cohort)
        return 0
    messages = alert_messages(cohort, live, recipients)
    try:
        with get_connection() as connection:
            connection.send_messages(messages)
    except (SMTPException, OSError) as exc:
        # A partial failure may have reached some admins; the retry reaches them again. The
        # alternative, recording each recipient, buys little for a rare, harmless repeat.
        for orphan in live:
            orphan.alert_failed(now, f"{type(exc).__name__}: {exc}")
        raise
    for orphan in live:
        orphan.alert_sent(now)
    return len(live)


def next_alert_at(cohort, now):
    """Return the earliest aware datetime at which `cohort`'s alerts may be sent again.

    ALERT_WINDOW after the last send (or send in progress) of the cohort; `now`
    when there was none in the window.
    """
    state = OrphanedInterview.AlertState
    last = (OrphanedInterview.objects.filter(
        cohort=cohort, alert_state__in=[state.SENT, state.SENDING], alert_claimed_at__gt=now - ALERT_WINDOW)
        .order_by("-alert_claimed_at").values_list("alert_claimed_at", flat=True).first())
    return last + ALERT_WINDOW if last else now


def send_cohort_alerts(orphan_id):
    """Send every claimable alert of orphan `orphan_id`'s cohort; return how many went out.

    The per-orphan task's work: its own alert, and any that piled up in the same
    cohort meanwhile (a burst becomes a digest). A missing orphan sends nothing.
    """
    orphan = OrphanedInterview.objects.select_related("cohort__organization").filter(pk=orphan_id).first()
    if orphan is None:
        return 0
    pending = orphan.cohort.orphans.alert_claimable().order_by("created_at", "pk")
    return send_alerts(orphan.cohort, pending)


def send_pending_alerts(now=None):
    """Send the alerts still pending after ALERT_GRACE, a batch per cohort; return how many went out.

    The safety net for alerts whose task was never published (broker down), lost,
    or is overdue for a retry. An SMTP error for one cohort is logged and
    recorded on its orphans; the other cohorts still get theirs.
    """
    now = now or timezone.now()
    due = (
        OrphanedInterview.objects.alert_claimable(now)
        .filter(created_at__lte=now - ALERT_GRACE)
        .filter(Q(alert_claimed_at__isnull=True) | Q(alert_claimed_at__lte=now - ALERT_GRACE))
    )
    cohort_ids = set(due.values_list("cohort_id", flat=True))
    sent = 0
    for cohort in Cohort.objects.filter(pk__in=cohort_ids).select_related("organization"):
        try:
            sent += send_alerts(cohort, due.filter(cohort=cohort).order_by("created_at", "pk"), now=now)
        except (SMTPException, OSError):
            logger.exception("Sending the pending orphan alerts of %s failed; the next sweep retries", cohort)
    return sent


# --- matching, dismissing, restoring ---------------------------------------------------------


class OrphanConflict(Exception):
    """The orphan or the application changed first: nothing was changed. str() says what."""


class OrphanAlreadyResolved(OrphanConflict):
    """Someone matched or dismissed the orphan first (or it is not dismissed, for a restore)."""

    def __init__(self, orphan, message=None):
        self.orphan = orphan
        who = f" by {orphan.resolved_by}" if orphan.resolved_by_id else ""
        if orphan.resolution == OrphanedInterview.Resolution.MATCHED:
            target = f" to {orphan.application.applicant_name}" if orphan.application_id else ""
            default = f"{orphan.email} was already matched{target}{who}; nothing was changed."
        elif orphan.resolution == OrphanedInterview.Resolution.DISMISSED:
            default = f"{orphan.email} was already dismissed{who}; nothing was changed."
        else:
            default = f"{orphan.email} is not dismissed (any more); nothing was changed."
        super().__init__(message or default)


class ApplicationClosed(OrphanConflict):
    """The chosen application's status is final: a booking cannot schedule it."""

    def __init__(self, application):
        self.application = application
        super().__init__(
            f"{application.applicant_name} is {application.status_label.lower()}: "
            "a closed application cannot take an interview. Nothing was changed."
        )


def match_orphan(orphan, application, *, user, remember_email=True):
    """Give `orphan`'s booking to `application`, the way a webhook match would; return a sentence.

    In one transaction: locks the application, the booking and the orphan (the
    webhook's lock order), binds the booking and the unmatched bookings of its
    chain (same iCalUID, rescheduleUid links) to the application, then runs
    scheduling.bookings.sync_application, so the schedule, status transition,
    stage and history ("Matched by <user>") are exactly a webhook's. Marks the
    orphan matched by `user`, and with `remember_email` adds the booker's email
    as an alternate email, so the applicant's next bookings match by themselves.
    Later reschedules and cancels follow through the booking chain.

    Raises OrphanAlreadyResolved when someone resolved the orphan first,
    ApplicationClosed when the application is accepted, waitlisted or declined,
    ValueError when the application is in another cohort.
    """
    from scheduling.bookings import sync_application  # scheduling.services imports this module

    if application.cohort_id != orphan.cohort_id:
        raise ValueError("The application is not in the orphan's cohort.")
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=application.pk)
        booking, locked = _lock_booking_and_orphan(orphan)
        if locked.is_resolved:
            raise OrphanAlreadyResolved(locked)
        if application.status in CLOSED:
            raise ApplicationClosed(application)
        if booking.application_id not in (None, application.pk):
            raise OrphanConflict(f"Booking {booking.uid} already belongs to another application; "
                                 "nothing was changed.")
        if locked.cohort.is_archived:
            raise OrphanConflict("The cohort is archived: nothing in it can change.")
        chain = Booking.objects.unmatched_chain(booking)
        Booking.objects.filter(pk__in=[b.pk for b in chain]).update(application=application)
        booking.application = application
        replaced_uid, replaced_start = application.interview_booking_uid, application.interview_start
        sentence = sync_application(application, touched=booking, opens=True, user=user,
                                    note=f"Matched by {user}")
        replaced = replaced_uid and application.interview_booking_uid != replaced_uid
        timeline.record(application, "matched", user=user, uid=booking.uid, email=locked.email,
                        start=timeline.iso(booking.start),
                        replaced_uid=replaced_uid if replaced else "",
                        replaced_start=timeline.iso(replaced_start) if replaced else None)
        now = timezone.now()
        # Orphans of earlier bookings of the chain (orphaned too) are settled by this match.
        OrphanedInterview.objects.filter(
            cohort=locked.cohort_id, resolved_at__isnull=True, booking_uid__in=[b.uid for b in chain],
            attendee_key=booking.attendee_key,
        ).update(resolved_at=now, resolved_by=user, resolution=OrphanedInterview.Resolution.MATCHED,
                 application=application)
        # The deliveries of those bookings now concern the application (its detail page lists them).
        WebhookDelivery.objects.filter(
            cohort=locked.cohort_id, booking_uid__in=[b.uid for b in chain], application__isnull=True,
        ).update(application=application, match_rule=MatchRule.MANUAL)
        email = normalize_email(locked.email)
        if remember_email and email and email != application.contact_email:
            _, added = ApplicationEmail.objects.get_or_create(application=application, email=email)
            if added:
                OrphanedInterview.objects.filter(pk=locked.pk).update(added_email=email)
        snapshot(locked, user=user, reason=f"Matched to {application.public_id}")
        bump_cohort_version(locked.cohort_id)
    orphan.resolved_at, orphan.resolved_by, orphan.application = now, user, application
    orphan.resolution = OrphanedInterview.Resolution.MATCHED
    return sentence


def _lock_booking_and_orphan(orphan):
    """Lock the orphan's Booking, then the orphan; return both (the booking created if never stored).

    The webhook locks a booking before its orphan (record_orphan): taking them in
    the same order means a match and a delivery for the same booking queue
    instead of deadlocking. A reschedule can move the orphan to a new booking
    uid between the unlocked read and the lock; then we read again.
    """
    for _ in range(3):
        seen = OrphanedInterview.objects.get(pk=orphan.pk)
        booking, _ = Booking.objects.select_for_update().get_or_create(
            cohort_id=seen.cohort_id, uid=seen.booking_uid, attendee_key=seen.attendee_key,
            defaults={
                "ical_uid": seen.ical_uid, "state": Booking.State.ACCEPTED, "start": seen.start,
                "end": seen.end, "meeting_url": seen.meeting_url, "email": seen.email,
                "name": seen.name, "time_zone": seen.time_zone, "event_type": seen.event_type,
                "last_event_at": seen.created_at,
            },
        )
        locked = (OrphanedInterview.objects.select_for_update(of=("self",))
                  .select_related("resolved_by", "application").get(pk=orphan.pk))
        if locked.booking_uid == booking.uid:
            return booking, locked
    raise OrphanConflict("The booking kept changing while we matched it; try again.")


def dismiss_orphan(orphan, *, user, reason):
    """Dismiss `orphan` with `reason` (an OrphanedInterview.DismissReason); it leaves the badge.

    Kept, and restorable with `restore_orphan`. A conditional UPDATE: raises
    OrphanAlreadyResolved when someone matched or dismissed it first, ValueError
    for an unknown reason.
    """
    reason = OrphanedInterview.DismissReason(reason)
    now = timezone.now()
    done = OrphanedInterview.objects.filter(pk=orphan.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=user, resolution=OrphanedInterview.Resolution.DISMISSED,
        dismiss_reason=reason.value,
    )
    if not done:
        raise OrphanAlreadyResolved(_reread(orphan))
    snapshot(orphan, user=user, reason=f"Dismissed: {reason.label}")
    bump_cohort_version(orphan.cohort_id)
    orphan.resolved_at, orphan.resolved_by = now, user
    orphan.resolution, orphan.dismiss_reason = OrphanedInterview.Resolution.DISMISSED, reason.value


def restore_orphan(orphan, *, user):
    """Put a dismissed `orphan` back among the unresolved ones (and on the badge).

    Raises OrphanAlreadyResolved when it is not dismissed (any more): matched,
    or restored by someone else first. Who dismissed it and why stay in its
    history (the dismissal's snapshot); the restore is recorded as by `user`.
    """
    done = OrphanedInterview.objects.filter(
        pk=orphan.pk, resolution=OrphanedInterview.Resolution.DISMISSED
    ).update(resolved_at=None, resolved_by=None, resolution="", dismiss_reason="")
    if not done:
        fresh = _reread(orphan)
        raise OrphanAlreadyResolved(fresh, None if fresh.is_resolved else
                                    f"{fresh.email} was already restored; nothing was changed.")
    snapshot(orphan, user=user, reason="Restored")
    bump_cohort_version(orphan.cohort_id)
    logger.info("Orphan #%s restored by %s", orphan.pk, user)
    orphan.resolved_at, orphan.resolved_by, orphan.resolution, orphan.dismiss_reason = None, None, "", ""


def unmatch_orphan(orphan, *, user):
    """Undo the match of `orphan`: its booking goes back to the orphan queue; return a sentence.

    In one transaction, in the webhook's lock order (application, booking,
    orphan): the booking and the rest of its chain leave the application, with
    their webhook deliveries; the alternate email the match added is removed (so
    the next booking from it does not match again); the orphan is unresolved
    again, its alert state untouched (an alert already sent is not sent again).
    Then the application is re-synced: its earlier interview is current again if
    that booking is still live, else the schedule clears and a scheduled status
    returns to waiting. Both the timeline and the orphan's history record it.

    Raises OrphanConflict when the orphan is not matched (any more), its booking
    has moved to another application since, or the cohort is archived.
    """
    from scheduling.bookings import _chain_of
    from scheduling.reassign import resync_after_loss

    with transaction.atomic():
        seen = OrphanedInterview.objects.select_related("cohort").get(pk=orphan.pk)
        if seen.resolution != OrphanedInterview.Resolution.MATCHED or seen.application_id is None:
            raise OrphanConflict(f"{seen.email} is not matched (any more); nothing was changed.")
        if seen.cohort.is_archived:
            raise OrphanConflict("The cohort is archived: nothing in it can change.")
        application = Application.objects.select_for_update().get(pk=seen.application_id)
        booking, locked = _lock_booking_and_orphan(orphan)
        if locked.resolution != OrphanedInterview.Resolution.MATCHED or locked.application_id != application.pk:
            raise OrphanConflict(f"{locked.email} was changed by someone else first; nothing was changed.")
        if booking.application_id != application.pk:
            raise OrphanConflict(f"Booking {booking.uid} has moved to another application since; "
                                 "nothing was changed.")
        chain = _chain_of(booking, list(application.bookings.all())) or [booking]
        uids = [b.uid for b in chain]
        Booking.objects.filter(pk__in=[b.pk for b in chain]).update(application=None)
        booking.application = None
        WebhookDelivery.objects.filter(cohort=locked.cohort_id, booking_uid__in=uids,
                                       application=application).update(application=None)
        if locked.added_email:
            ApplicationEmail.objects.filter(application=application, email=locked.added_email).delete()
        OrphanedInterview.objects.filter(pk=locked.pk).update(
            resolved_at=None, resolved_by=None, resolution="", application=None, added_email="")
        sentence = resync_after_loss(application, booking, user=user, note=f"Unmatched by {user}")
        restored = application.interview_booking_uid not in ("", *uids)
        timeline.record(application, "unmatched", user=user, uid=booking.uid, start=timeline.iso(booking.start),
                        restored_uid=application.interview_booking_uid if restored else "",
                        restored_start=timeline.iso(application.interview_start) if restored else None)
        snapshot(locked, user=user, reason=f"Unmatched from {application.public_id}")
        bump_cohort_version(locked.cohort_id)
    orphan.resolved_at, orphan.resolved_by, orphan.resolution, orphan.application = None, None, "", None
    return sentence


def _reread(orphan):
    return OrphanedInterview.objects.select_related("resolved_by", "application").get(pk=orphan.pk)


# --- suggestions and search ----------------------------------------------------------------

# Same domain says little at a mail provider everybody uses.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
    "icloud.com", "me.com", "proton.me", "protonmail.com", "aol.com", "gmx.de", "gmx.net",
    "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com",
})
SUGGESTIONS = 3
# Candidates one orphan's query fetches at most before ranking (a very common surname).
SUGGESTION_POOL = 50

SAME_NAME = "same name"
SAME_SURNAME = "same surname"
SAME_DOMAIN = "same email domain"
ONE_CHARACTER_OFF = "email differs by one character"
# How much each reason weighs in the ranking; waiting applications only break ties.
WEIGHT = {SAME_NAME: 4, ONE_CHARACTER_OFF: 4, SAME_SURNAME: 2, SAME_DOMAIN: 1}


def _waiting_first():
    """An ORDER BY key: waiting for an interview (0), new (1), anything else (2)."""
    return Case(When(status__in=list(WAITING), then=Value(0)), When(status=Status.NEW, then=Value(1)),
                default=Value(2), output_field=IntegerField())


def _words(text):
    return [w for w in re.split(r"[\W_\d]+", text.lower()) if len(w) >= 2]


def _split_email(email):
    local, _, domain = normalize_email(email).partition("@")
    return local, domain


def _one_edit_apart(a, b):
    """Return True when `a` and `b` differ by exactly one inserted, deleted or replaced character."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _one_edit_regex(email):
    """Return a regex matching every string one edit away from `email` (and `email` itself)."""
    alternatives = set()
    for i in range(len(email) + 1):
        alternatives.add(re.escape(email[:i]) + "." + re.escape(email[i:]))  # one inserted
        if i < len(email):
            alternatives.add(re.escape(email[:i]) + "." + re.escape(email[i + 1:]))  # one replaced
            alternatives.add(re.escape(email[:i] + email[i + 1:]))  # one deleted
    return "^(" + "|".join(sorted(alternatives)) + ")$"


def surname(name, email=""):
    """Return the orphan's surname: the last word of its name (of its email's local part if nameless)."""
    words = _words(name) or _words(_split_email(email)[0])
    return words[-1] if words and len(words[-1]) >= 2 else ""


def reasons_for(orphan, application):
    """Return why `application` may be `orphan`'s applicant: a list of reason sentences (maybe empty).

    Only the orphan's own name and email count: same name, same surname, the same
    email domain (webmail domains count for nothing), an email one character off.
    """
    reasons = []
    name = " ".join(_words(orphan.name))
    app_words = _words(application.applicant_name)
    if name and name == " ".join(app_words):
        reasons.append(SAME_NAME)
    family = surname(orphan.name, orphan.email)
    if family and app_words and app_words[-1] == family and SAME_NAME not in reasons:
        reasons.append(SAME_SURNAME)
    _, domain = _split_email(orphan.email)
    if domain and domain not in FREE_MAIL_DOMAINS and _split_email(application.contact_email)[1] == domain:
        reasons.append(SAME_DOMAIN)
    if _one_edit_apart(normalize_email(orphan.email), application.contact_email):
        reasons.append(ONE_CHARACTER_OFF)
    return reasons


def suggest_for(orphan, *, limit=SUGGESTIONS):
    """Return up to `limit` open applications of the orphan's cohort that may be its applicant.

    Drawn from this orphan alone (see reasons_for), so they never depend on which
    other orphans are listed. Each Application carries `.reasons` (sentences).
    Ranked by the weight of the reasons, then waiting for an interview first, then
    the most recently updated. One query.
    """
    email = normalize_email(orphan.email)
    _, domain = _split_email(email)
    signs = []  # (condition, weight): the database ranks by their sum, so a flood of weak ones waits
    name = " ".join(_words(orphan.name))
    if name:
        signs.append((Q(applicant_name__iexact=orphan.name.strip()), WEIGHT[SAME_NAME]))
    family = surname(orphan.name, email)
    if family:
        signs.append((Q(applicant_name__iendswith=f" {family}") | Q(applicant_name__iexact=family),
                      WEIGHT[SAME_SURNAME]))
    # Every sign is one the trigram indexes answer (UPPER(col) LIKE …, stored emails are
    # lower-case so i-lookups change nothing), so PostgreSQL reads the matching rows, not
    # the cohort: a sign it cannot index makes it filter every row (a regex alone: 830 ms
    # at 100,000 applications, bench/orphan_search.py).
    if domain and domain not in FREE_MAIL_DOMAINS:
        signs.append((Q(contact_email__iendswith=f"@{domain}"), WEIGHT[SAME_DOMAIN]))
    if email and len(email) <= 100:
        # One edit leaves the first half or the second half whole: those two LIKEs find the
        # few rows the regex then checks exactly.
        half = len(email) // 2
        near = Q(contact_email__istartswith=email[:half]) | Q(contact_email__iendswith=email[half:])
        signs.append((near & Q(contact_email__regex=_one_edit_regex(email)), WEIGHT[ONE_CHARACTER_OFF]))
    if not signs:
        return []
    found = Q()
    weight = Value(0)
    for condition, points in signs:
        found |= condition
        weight = weight + Case(When(condition, then=Value(points)), default=Value(0),
                               output_field=IntegerField())
    pool = (orphan.cohort.applications.exclude(status__in=list(CLOSED)).filter(found)
            .annotate(weight=weight)
            .order_by("-weight", _waiting_first(), "-updated_at", "pk")[:SUGGESTION_POOL])
    ranked = []
    for position, application in enumerate(pool):
        application.reasons = reasons_for(orphan, application)
        if application.reasons:
            ranked.append((-sum(WEIGHT[r] for r in application.reasons), position, application))
    ranked.sort(key=lambda item: item[:2])
    return [application for _, _, application in ranked[:limit]]


def suggest_applications(cohort, orphans, *, limit=SUGGESTIONS):
    """Return {orphan pk: [Application, …]}: each orphan's own suggestions (suggest_for), one query each."""
    result = {}
    for orphan in orphans:
        orphan.cohort = cohort
        result[orphan.pk] = suggest_for(orphan, limit=limit)
    return result


def search_applications(cohort, text, *, limit=10):
    """Return up to `limit` of `cohort`'s applications whose name or email contains `text`.

    Waiting for an interview first, then new, then the rest (closed ones
    included, for the view to show as not matchable). Empty text finds nothing.
    """
    text = (text or "").strip()
    if not text:
        return []
    return list(cohort.applications.search(text).order_by(_waiting_first(), "applicant_name", "pk")[:limit])
