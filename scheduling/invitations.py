"""Invitations and reminders: who gets one, rendering the round's template, sending it.

The database settles "at most once": an Invitation row is unique per
application, round, entry into the waiting status (`entry_for`), kind and
reminder number (resends excepted), so double clicks, concurrent workers and
retries all collide on one INSERT. Rows are created in the caller's transaction
and sent after commit by `scheduling.tasks.send_invitation`.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q
from django.template.loader import render_to_string
from django.utils import timezone

from applications.models import Application, StatusChange, time_zone_or_utc

from . import links, templating
from .models import InterviewRound, Invitation
from .rounds import round_waited_for
from .status import SCHEDULED, WAITING

logger = logging.getLogger(__name__)

# Why an application got no invitation; the bulk summary counts these.
NOT_WAITING = "not waiting for an interview"
NO_ROUND = "no round configured"
ALREADY_INVITED = "already invited"
BAD_TEMPLATE = "the round's template has an error"


@dataclass
class InviteResult:
    """What `invite` did: the new Invitation, or None and `skipped` (one of the reasons above)."""

    invitation: Invitation | None = None
    skipped: str = ""


def entry_for(application):
    """Return (entry key, StatusChange or None) of `application`'s entry into its current status.

    The key is "sc<pk>" of the newest StatusChange into the status, or "initial"
    for an application created in it that never moved (imports, the demo).
    """
    change = (StatusChange.objects.filter(application=application, new_status=application.status)
              .order_by("-created_at", "-pk").first())
    return (f"sc{change.pk}", change) if change else ("initial", None)


def _deadline(interview_round, since, organization):
    if not interview_round.book_within_days:
        return ""
    day = (since + timedelta(days=interview_round.book_within_days)).astimezone(
        time_zone_or_utc(organization.time_zone))
    return f"{day:%A} {day.day} {day:%B %Y}"


def template_context(application, interview_round, *, link, is_rebooking=False, since=None, applicant_page=None):
    """Return the dict an invitation template renders with (exactly templating.PLACEHOLDERS' roots).

    `applicant_page` overrides the applicant's page URL (the preview's made-up
    applicant has none); by default it is links.applicant_page_url, which issues
    the applicant's token when they have no working one.
    """
    cohort = application.cohort
    name = application.applicant_name.strip()
    return {
        "applicant": {"first_name": name.split()[0] if name else "", "name": name},
        "booking_link": link,
        "applicant_page": links.applicant_page_url(application) if applicant_page is None else applicant_page,
        "cohort": {"name": cohort.name},
        "round": interview_round.number,
        "deadline": _deadline(interview_round, since or timezone.now(), cohort.organization),
        "is_rebooking": is_rebooking,
    }


def render_invitation(interview_round, context, *, subject=None, body=None, reminder=False):
    """Return (subject, body) rendered from the round's template (or `subject`/`body` drafts).

    The subject is one line, prefixed "Reminder: " for a reminder. Raises
    templating.TemplateError for an unusable template.
    """
    subject = templating.render(interview_round.invitation_subject if subject is None else subject, context)
    subject = " ".join(subject.split())
    if reminder:
        subject = f"Reminder: {subject}"
    text = templating.render(interview_round.invitation_body if body is None else body, context)
    return subject[:300], text.strip() + "\n"


def sample_preview(interview_round, *, subject, body, cohort):
    """Return (subject, body) of `subject`/`body` drafts rendered for a made-up applicant.

    Raises templating.TemplateError, whose message the settings page shows as you type.
    """
    sample = Application(cohort=cohort, applicant_name="Ada Lovelace",
                         contact_email="ada.lovelace@example.org", public_id="app_000000000000")
    link = links.booking_link(sample, interview_round) if interview_round.booking_url else ""
    context = template_context(sample, interview_round, link=link or "https://cal.com/…",
                               applicant_page=f"{settings.SITE_URL}/i/(their own link)/")
    return render_invitation(interview_round, context, subject=subject, body=body)


def invite(application, *, user=None, source=Invitation.Source.MANUAL, resend=False, entry=None):
    """Create `application`'s invitation for the round it waits for, sent after commit.

    `user` is the admin who asked (None: automatic or command line), `source` an
    Invitation.Source value. `resend` records an explicit "Resend" (outside the
    once-per-entry rule). `entry` pins the entry key (automatic sends pass the
    StatusChange that caused them; a stale one is skipped). Returns an
    InviteResult; skips (never raises) when the application is not waiting, its
    round is not configured, or it was already invited for this entry.
    """
    number = round_waited_for(application.status)
    if application.status not in WAITING or number is None:
        return InviteResult(skipped=NOT_WAITING)
    interview_round = InterviewRound.objects.filter(cohort_id=application.cohort_id, number=number).first()
    if interview_round is None:
        return InviteResult(skipped=NO_ROUND)
    key, change = entry_for(application)
    if entry is not None and entry != key:
        return InviteResult(skipped=NOT_WAITING)  # it left that waiting status since
    is_rebooking = change is not None and change.old_status in SCHEDULED
    link = links.booking_link(application, interview_round)
    try:
        subject, body = render_invitation(
            interview_round, template_context(application, interview_round, link=link, is_rebooking=is_rebooking))
    except templating.TemplateError:
        return InviteResult(skipped=BAD_TEMPLATE)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                application=application, round=number, entry=key, kind=Invitation.Kind.INVITATION,
                is_resend=resend, is_rebooking=is_rebooking, source=source, sent_by=user,
                to_email=application.contact_email, booking_link=link, subject=subject, body=body,
            )
    except IntegrityError:
        return InviteResult(skipped=ALREADY_INVITED)
    _send_after_commit(invitation)
    return InviteResult(invitation)


def _send_after_commit(invitation):
    from .tasks import send_invitation

    send_invitation.delay_on_commit(invitation.pk)


@dataclass
class Summary:
    """What a bulk send did: how many were sent, and how many were skipped for each reason."""

    sent: int = 0
    skipped: dict = field(default_factory=dict)

    def sentence(self):
        """Return e.g. "Sent 3 invitations; skipped 2: 1 not waiting for an interview, 1 already invited."."""
        text = f"Sent {self.sent} invitation{'s' if self.sent != 1 else ''}"
        skipped = sum(self.skipped.values())
        if skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            text += f"; skipped {skipped}: {reasons}"
        return text + "."


def invite_many(applications, *, user=None, source=Invitation.Source.MANUAL):
    """Invite each application of `applications` (an iterable); return a Summary."""
    summary = Summary()
    for application in applications:
        result = invite(application, user=user, source=source)
        if result.invitation is not None:
            summary.sent += 1
        else:
            summary.skipped[result.skipped] = summary.skipped.get(result.skipped, 0) + 1
    return summary


def invite_on_entry(status_change_id):
    """Send the automatic invitation for StatusChange `status_change_id` into a waiting status.

    Does nothing unless the change entered waiting_first_round/waiting_second_round,
    the application is still in that entry, and the round has `auto_invite` on.
    Returns the Invitation, or None. The unique constraint makes a second call a no-op.
    """
    change = StatusChange.objects.select_related("application__cohort").filter(pk=status_change_id).first()
    if change is None or change.new_status not in WAITING:
        return None
    application = change.application
    number = round_waited_for(change.new_status)
    if not InterviewRound.objects.filter(cohort_id=application.cohort_id, number=number, auto_invite=True).exists():
        return None
    result = invite(application, user=None, source=Invitation.Source.AUTOMATIC, entry=f"sc{change.pk}")
    if result.skipped == BAD_TEMPLATE:
        # Saved templates are checked, so only a template edited past the form gets here.
        logger.warning("No automatic invitation for application %s: round %s's template has an error",
                       application.pk, number)
    return result.invitation


def deliver(invitation_id):
    """Send Invitation `invitation_id` by email (text and HTML parts) and mark it sent.

    The row is locked while sending, so two workers holding the same task never
    both send; an invitation already sent is left alone. Returns True when this
    call sent it. SMTP errors are recorded on the row (state "failed") and
    re-raised, so the Celery task retries with backoff.
    """
    with transaction.atomic():
        invitation = (Invitation.objects.select_for_update(of=("self",))
                      .select_related("application__cohort__organization").filter(pk=invitation_id).first())
        if invitation is None or invitation.state == Invitation.State.SENT:
            return False
        html = render_to_string("emails/invitation/body.html",
                                {"body": invitation.body, "link": invitation.booking_link})
        reply_to = invitation.application.cohort.reply_to_email
        # Applicants answer invitations: their replies go to the cohort's address (issue 9).
        message = EmailMultiAlternatives(invitation.subject, invitation.body, settings.DEFAULT_FROM_EMAIL,
                                         [invitation.to_email], reply_to=[reply_to] if reply_to else None)
        message.attach_alternative(html, "text/html")
        try:
            message.send()
        except Exception as exc:
            failure = exc
        else:
            Invitation.objects.filter(pk=invitation.pk).update(
                state=Invitation.State.SENT, sent_at=timezone.now(), error="", attempts=F("attempts") + 1)
            return True
    # Recorded after the transaction (and its lock) ended: the task's retry will lock it again.
    Invitation.objects.filter(pk=invitation.pk).exclude(state=Invitation.State.SENT).update(
        state=Invitation.State.FAILED, error=f"{type(failure).__name__}: {failure}"[:2000],
        attempts=F("attempts") + 1)
    raise failure


# --- reminders ---------------------------------------------------------------------------


def due_reminders(now=None):
    """Return [(Application, InterviewRound, entry key, reminder number)] due at `now` (aware UTC).

    An application is due when it is still waiting for a round with
    `remind_after_days` set, has no booking (confirmed or pending), was invited
    for its current entry, has had fewer than `max_reminders` reminders, and the
    last invitation or reminder was sent at least `remind_after_days` days ago.
    """
    now = now or timezone.now()
    due = []
    rounds = InterviewRound.objects.filter(remind_after_days__isnull=False, max_reminders__gt=0)
    for interview_round in rounds.select_related("cohort"):
        status = {1: "waiting_first_round", 2: "waiting_second_round"}[interview_round.number]
        candidates = (
            Application.objects.filter(cohort_id=interview_round.cohort_id, status=status,
                                       interview_booking_uid="", pending_booking_uid="")
            .annotate(last_sent=Max("invitations__sent_at", filter=Q(invitations__round=interview_round.number)))
            .filter(last_sent__lte=now - timedelta(days=interview_round.remind_after_days))
        )
        for application in candidates:
            key, _ = entry_for(application)
            sent = (Invitation.objects.filter(application=application, round=interview_round.number, entry=key,
                                              state=Invitation.State.SENT)
                    .aggregate(last=Max("sent_at"), reminders=Count("pk", filter=Q(kind=Invitation.Kind.REMINDER))))
            if sent["last"] is None or sent["last"] > now - timedelta(days=interview_round.remind_after_days):
                continue  # never invited for this entry, or reminded too recently
            if sent["reminders"] >= interview_round.max_reminders:
                continue
            application.cohort = interview_round.cohort
            due.append((application, interview_round, key, sent["reminders"] + 1))
    return due


def send_reminders(now=None):
    """Create (and send after commit) every reminder due at `now`; return how many."""
    count = 0
    for application, interview_round, key, number in due_reminders(now):
        first = (Invitation.objects.filter(application=application, round=interview_round.number, entry=key,
                                           kind=Invitation.Kind.INVITATION)
                 .order_by("created_at").first())
        link = links.booking_link(application, interview_round)
        context = template_context(application, interview_round, link=link,
                                    is_rebooking=bool(first and first.is_rebooking),
                                    since=first.created_at if first else None)
        try:
            subject, body = render_invitation(interview_round, context, reminder=True)
        except templating.TemplateError:
            logger.warning("Round %s of %s has a broken template; no reminder sent", interview_round.number,
                           interview_round.cohort)
            continue
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    application=application, round=interview_round.number, entry=key,
                    kind=Invitation.Kind.REMINDER, reminder_number=number, source=Invitation.Source.SCHEDULE,
                    is_rebooking=context["is_rebooking"], to_email=application.contact_email,
                    booking_link=link, subject=subject, body=body,
                )
        except IntegrityError:
            continue  # another run created this reminder first
        _send_after_commit(invitation)
        count += 1
    return count


# --- what the Pipeline shows --------------------------------------------------------------


def state_of(application, history):
    """Return {"invited_at", "reminders", "state", "error"} for `application`'s current waiting entry.

    `history` is its invitations, newest first (at least those since it entered
    the status). An invitation belongs to the entry when it is for the round the
    status waits for and was made at or after `status_changed_at` (any time for a
    row that never moved). None when nothing was sent or queued for the entry.
    """
    number = round_waited_for(application.status)
    entered = application.status_changed_at
    mine = [i for i in history if i.round == number and (entered is None or i.created_at >= entered)]
    firsts = [i for i in mine if i.kind == Invitation.Kind.INVITATION]
    if not firsts:
        return None
    last = firsts[0]
    return {
        "invited_at": min(i.sent_at or i.created_at for i in firsts),
        "reminders": sum(1 for i in mine if i.kind == Invitation.Kind.REMINDER and i.state == Invitation.State.SENT),
        "state": last.state,
        "error": last.error,
    }
