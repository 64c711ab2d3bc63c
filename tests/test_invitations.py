"""Invitations: the sandboxed template, sending once per entry, resends, bulk, reminders, automation."""

from datetime import timedelta
from smtplib import SMTPServerDisconnected

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduling import invitations, links, templating
from scheduling.models import Invitation

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, InterviewRoundFactory
from .threads import run_together

# --- the template ------------------------------------------------------------------------

CONTEXT = {
    "applicant": {"first_name": "Ada", "name": "Ada Lovelace"}, "booking_link": "https://cal.com/x?y=1",
    "applicant_page": "", "cohort": {"name": "Northwind"}, "round": 2, "deadline": "Friday 4 December 2026",
    "is_rebooking": False,
}


def test_every_placeholder_renders():
    text = templating.render(
        "{{ applicant.first_name }}|{{ applicant.name }}|{{ booking_link }}|{{ applicant_page }}|"
        "{{ cohort.name }}|{{ round }}|{{ deadline }}|{% if is_rebooking %}again{% else %}first{% endif %}",
        CONTEXT)
    assert text == "Ada|Ada Lovelace|https://cal.com/x?y=1||Northwind|2|Friday 4 December 2026|first"


def test_rendering_does_not_escape_the_plain_text_part():
    assert templating.render("{{ applicant.name }}", {**CONTEXT, "applicant": {"name": "O'Brien & <Co>"}}) == \
        "O'Brien & <Co>"


@pytest.mark.parametrize(("source", "says"), [
    ("Hi {{ applicant.email }}", "Unknown placeholder {{ applicant.email }}"),
    ("Hi {{ name }}", "Unknown placeholder {{ name }}"),
    ("{% if secret %}x{% endif %}", "Unknown placeholder {{ secret }}"),
    ("{{ round|default:settings }}", "Unknown placeholder {{ settings }}"),
    ("{% load static %}", "'load'"),
    ("{% include 'base.html' %}", "'include'"),
    ("{% debug %}", "'debug'"),
    ("{% extends 'base.html' %}", "'extends'"),
    ("{{ round|safe }}", "Invalid filter"),
    ("{% if %}", "if"),
    ("Hi {{ applicant.first_name", "is not a complete placeholder"),
    ("Hi applicant.first_name }}", "is not a complete placeholder"),
])
def test_unknown_placeholders_and_tags_are_errors(source, says):
    error = templating.check(source)
    assert error is not None and says in error


def test_default_templates_are_valid_and_read_well(ada):
    round_ = InterviewRoundFactory(cohort=ada.cohort)
    link = links.booking_link(ada, round_)
    context = invitations.template_context(ada, round_, link=link)
    subject, body = invitations.render_invitation(round_, context)
    assert subject == f"Your round 1 interview for {ada.cohort.name}"
    assert body.startswith("Hello Ada,\n")
    assert link in body and "Please book by" in body and "{{" not in body
    rebooking = invitations.render_invitation(round_, {**context, "is_rebooking": True})
    assert rebooking[0].startswith("Please pick a new time: ") and "was cancelled" in rebooking[1]


# --- sending -----------------------------------------------------------------------------


@pytest.fixture
def round1(cohort):
    return InterviewRoundFactory(cohort=cohort, number=1)


def test_invite_sends_text_and_html_with_the_bound_link(ada, round1, org_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = invitations.invite(ada, user=org_admin)
    invitation = Invitation.objects.get()
    assert result.invitation == invitation
    assert (invitation.state, invitation.sent_by, invitation.kind, invitation.entry) == (
        "sent", org_admin, "invitation", "initial")
    assert invitation.sent_at is not None
    [email] = mail.outbox
    assert email.to == ["ada.lovelace@example.org"]
    assert email.subject == invitation.subject
    assert links.make_ref(ada, 1) in email.body
    html, mime = email.alternatives[0]
    assert mime == "text/html" and "Choose a time" in html and "&amp;" in html  # the link's & escaped


def test_a_second_invite_for_the_same_entry_is_skipped_and_resend_is_recorded(ada, round1, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invite(ada)
        assert invitations.invite(ada).skipped == invitations.ALREADY_INVITED
        resent = invitations.invite(ada, resend=True)
    assert resent.invitation.is_resend
    assert len(mail.outbox) == 2 and Invitation.objects.count() == 2


def test_invite_skips_applications_not_waiting_or_without_a_round(cohort, ada):
    assert invitations.invite(ada).skipped == invitations.NO_ROUND
    scheduled = ApplicationFactory(cohort=cohort, status="first_round_scheduled")
    InterviewRoundFactory(cohort=cohort, number=1)
    assert invitations.invite(scheduled).skipped == invitations.NOT_WAITING


def test_a_new_entry_into_waiting_can_be_invited_again(ada, round1, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invite(ada)
        ada.move_to("first_round_scheduled")
        ada.move_to("waiting_first_round")
        again = invitations.invite(ada)
    assert again.invitation is not None and again.invitation.is_rebooking
    assert again.invitation.subject.startswith("Please pick a new time")
    assert len(mail.outbox) == 2


@pytest.fixture
def eager_retries():
    """Let eager tasks retry as a worker would (propagating would raise the first Retry instead)."""
    from cohortos.celery import app

    saved = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = saved


def test_smtp_errors_are_recorded_and_retried(ada, round1, monkeypatch, django_capture_on_commit_callbacks,
                                              eager_retries):
    calls = []
    real_send = mail.EmailMultiAlternatives.send

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", flaky)
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invite(ada)
    invitation = Invitation.objects.get()
    assert len(calls) == 3  # the task retried twice (eager retries ignore the countdown)
    assert (invitation.state, invitation.attempts, invitation.error) == ("sent", 3, "")
    assert len(mail.outbox) == 1


def test_a_failure_that_outlasts_the_retries_stays_failed_with_its_error(ada, round1, monkeypatch,
                                                                       django_capture_on_commit_callbacks,
                                                                       eager_retries):
    def down(self, *args, **kwargs):
        raise SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", down)
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invite(ada)  # the publish swallows the final error (BestEffortTask)
    invitation = Invitation.objects.get()
    assert invitation.state == "failed" and invitation.attempts == 6  # the first try and 5 retries
    assert "Connection unexpectedly closed" in invitation.error


def test_deliver_twice_sends_once(ada, round1):
    result = invitations.invite(ada)  # no commit callbacks: the task did not run
    assert invitations.deliver(result.invitation.pk) is True
    assert invitations.deliver(result.invitation.pk) is False
    assert len(mail.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_double_clicks_and_workers_send_one_invitation(cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1)
    from applications.models import Application

    def click():
        return invitations.invite(Application.objects.get(pk=ada.pk)).skipped

    results = run_together(*[click] * 8)
    assert sorted(results) == [""] + [invitations.ALREADY_INVITED] * 7
    assert len(mail.outbox) == 1  # the winner's task ran (eagerly) after its commit
    # Workers that got the same task twice (a redelivered message): one sends, the others see it sent.
    pk = Invitation.objects.get().pk
    Invitation.objects.filter(pk=pk).update(state="pending", sent_at=None)
    mail.outbox.clear()
    sent = run_together(*[lambda: invitations.deliver(pk)] * 6)
    assert sorted(sent) == [False] * 5 + [True]
    assert len(mail.outbox) == 1


# --- bulk and the command ------------------------------------------------------------------


def test_bulk_summary_counts_sent_and_why_others_were_skipped(cohort, ada, round1):
    invitations.invite(ada)
    waiting = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    second = ApplicationFactory(cohort=cohort, status="waiting_second_round")
    done = ApplicationFactory(cohort=cohort, status="accepted")
    summary = invitations.invite_many([ada, waiting, second, done])
    assert summary.sent == 1
    assert summary.skipped == {invitations.ALREADY_INVITED: 1, invitations.NO_ROUND: 1,
                               invitations.NOT_WAITING: 1}
    assert summary.sentence() == ("Sent 1 invitation; skipped 3: 1 already invited, 1 no round configured, "
                                  "1 not waiting for an interview.")


def test_send_invitations_command(cohort, ada, round1, capsys, django_capture_on_commit_callbacks):
    ApplicationFactory(cohort=cohort, status="waiting_first_round")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_invitations", cohort.slug, "--round", "1", "--all-waiting")
    assert capsys.readouterr().out.strip() == "Sent 2 invitations."
    call_command("send_invitations", cohort.slug, "--round", "1", "--application", ada.public_id)
    assert capsys.readouterr().out.strip() == "Sent 0 invitations; skipped 1: 1 already invited."
    assert len(mail.outbox) == 2
    assert set(Invitation.objects.values_list("source", flat=True)) == {"command"}


@pytest.mark.parametrize(("args", "says"), [
    (["nope", "--round", "1", "--all-waiting"], "No cohort with slug 'nope'"),
    (["{slug}", "--round", "2", "--all-waiting"], "Round 2 is not configured"),
    (["{slug}", "--round", "1", "--application", "app_missing"], "No application 'app_missing'"),
])
def test_send_invitations_command_errors_are_sentences(cohort, round1, args, says):
    with pytest.raises(CommandError, match=says):
        call_command("send_invitations", *[a.format(slug=cohort.slug) for a in args])


# --- reminders over time -----------------------------------------------------------------


def remind():
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("send_reminders")


def test_reminders_follow_remind_after_days_up_to_max(cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1, remind_after_days=3, max_reminders=2)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invitations.invite(ada)
        invitations.deliver(Invitation.objects.get().pk)
    with time_machine.travel(start + timedelta(days=2, hours=23), tick=False):
        remind()
        assert Invitation.objects.count() == 1
    with time_machine.travel(start + timedelta(days=3, hours=1), tick=False):
        remind()
        remind()  # a second run the same hour sends nothing more
    reminders = Invitation.objects.filter(kind="reminder")
    assert [(r.reminder_number, r.state) for r in reminders.all()] == [(1, "sent")]
    assert reminders.get().subject.startswith("Reminder: ")
    with time_machine.travel(start + timedelta(days=5), tick=False):
        remind()
        assert reminders.count() == 1  # three days after the reminder, not after the invitation
    with time_machine.travel(start + timedelta(days=6, hours=2), tick=False):
        remind()
    with time_machine.travel(start + timedelta(days=30), tick=False):
        remind()
    assert reminders.count() == 2  # max_reminders
    assert len(mail.outbox) == 3


def test_no_reminder_once_they_book(client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1, remind_after_days=1)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invitations.invite(ada)
        invitations.deliver(Invitation.objects.get().pk)
        post(client, cohort, with_email(sample("booking_requested", metadata={}), ada.contact_email))  # pending
    with time_machine.travel(start + timedelta(days=2), tick=False):
        assert invitations.send_reminders() == 0


def test_no_reminder_without_an_invitation_or_remind_after_days(cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1, remind_after_days=None)
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        assert invitations.send_reminders() == 0
    InterviewRoundFactory(cohort=cohort, number=2, remind_after_days=1)
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        assert invitations.send_reminders() == 0


# --- automatic on entry ------------------------------------------------------------------


def test_auto_invite_on_entry_by_an_admin_exactly_once(cohort, org_admin, django_capture_on_commit_callbacks):
    InterviewRoundFactory(cohort=cohort, number=1, auto_invite=True)
    application = ApplicationFactory(cohort=cohort, status="new")
    with django_capture_on_commit_callbacks(execute=True):
        change = application.move_to("waiting_first_round", user=org_admin)
    invitation = Invitation.objects.get()
    assert (invitation.source, invitation.sent_by, invitation.entry, invitation.is_rebooking) == (
        "automatic", None, f"sc{change.pk}", False)
    assert invitations.invite_on_entry(change.pk) is None  # a lost-and-redelivered task: no second one
    assert len(mail.outbox) == 1


def test_auto_invite_after_a_cancelled_booking_says_it_is_a_rebooking(client, cohort, ada,
                                                                      django_capture_on_commit_callbacks):
    InterviewRoundFactory(cohort=cohort, number=1, auto_invite=True)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, cohort, sample("booking_created"))
        post(client, cohort, sample("booking_rescheduled"))
        post(client, cohort, sample("booking_cancelled"))
    ada.refresh_from_db()
    assert ada.status == "waiting_first_round"
    invitation = Invitation.objects.get()
    assert invitation.is_rebooking and invitation.source == "automatic"
    assert "was cancelled" in mail.outbox[0].body


def test_no_auto_invite_when_off_or_for_other_statuses(cohort, django_capture_on_commit_callbacks):
    InterviewRoundFactory(cohort=cohort, number=1, auto_invite=False)
    InterviewRoundFactory(cohort=cohort, number=2, auto_invite=True)
    application = ApplicationFactory(cohort=cohort, status="new")
    with django_capture_on_commit_callbacks(execute=True):
        application.move_to("waiting_first_round")
        application.move_to("first_round_scheduled")
    assert not Invitation.objects.exists()


def test_the_sweep_makes_automatic_invitations_whose_task_was_lost(cohort):
    from scheduling.tasks import send_pending_invitations

    InterviewRoundFactory(cohort=cohort, number=1, auto_invite=True)
    application = ApplicationFactory(cohort=cohort, status="new")
    change = application.move_to("waiting_first_round")  # on-commit never runs: the task is "lost"
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert send_pending_invitations() == (0, 1)
        assert send_pending_invitations() == (0, 0)
    assert Invitation.objects.get().entry == f"sc{change.pk}"


def test_the_sweep_sends_invitations_left_pending(ada, round1):
    from scheduling.tasks import send_pending_invitations

    invitations.invite(ada)  # on-commit never runs: the task was never published
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert send_pending_invitations() == (1, 0)
    assert Invitation.objects.get().state == "sent"


# --- the done-when story through send_webhook ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_send_webhook_with_the_bound_link_schedules_the_right_application_and_a_forged_ref_does_not(
        live_server, cohort, ada):
    import io

    from orphans.models import OrphanedInterview
    from scheduling.models import WebhookDelivery

    from .calcom_helpers import SAMPLES

    out = io.StringIO()
    call_command("send_webhook", str(SAMPLES / "calcom_booking_created.json"), cohort=cohort.slug,
                 url=live_server.url, link_of=ada.public_id, email="ada.personal@example.net", stdout=out)
    assert out.getvalue().startswith("200 applied")
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled"
    delivery = WebhookDelivery.objects.get()
    assert delivery.match_rule == "link" and b"ada.personal@example.net" in delivery.body_bytes
    out = io.StringIO()
    call_command("send_webhook", str(SAMPLES / "calcom_booking_requested.json"), cohort=cohort.slug,
                 url=live_server.url, application_id="app_7f3c2a91.1.AAAAAAAAAAAAAAAA",
                 email="mallory@example.net", stdout=out)
    assert out.getvalue().startswith("200 orphaned")
    assert OrphanedInterview.objects.count() == 1


def test_send_webhook_link_of_an_unknown_or_closed_application_is_a_sentence(cohort, ada):
    from .calcom_helpers import SAMPLES

    with pytest.raises(CommandError, match="No application 'app_nope'"):
        call_command("send_webhook", str(SAMPLES / "calcom_booking_created.json"), cohort=cohort.slug,
                     link_of="app_nope")
    ApplicationFactory(cohort=cohort, public_id="app_done", status="declined", current_stage="decision")
    with pytest.raises(CommandError, match="it has no booking link"):
        call_command("send_webhook", str(SAMPLES / "calcom_booking_created.json"), cohort=cohort.slug,
                     link_of="app_done")
