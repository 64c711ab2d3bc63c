"""The cohort settings page: interview rounds, the webhook set-up, sync health. Admins only.

Views only translate HTTP; the rules live on the models, in forms.py and in
invitations.py. Outsiders get 404 (a stranger does not learn a slug exists),
members who are not admins 403.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from applications.access import check_org_admin
from applications.models import Cohort, UserSettings

from . import events, ingest, invitations, spool, templating
from .forms import CalcomApiKeyForm, InterviewRoundForm, ProviderSecretsForm
from .schedule_forms import ApplicantContactForm
from .models import InterviewRound

TEMPLATE = "scheduling/cohort_settings.html"
SYNC_HEALTH_ROWS = 20
# What to tick under "Event triggers" in Cal.com's webhook form, in its own words.
CALCOM_TRIGGERS = [
    ("Booking Created", events.BOOKING_CREATED),
    ("Booking Rescheduled", events.BOOKING_RESCHEDULED),
    ("Booking Cancelled", events.BOOKING_CANCELLED),
    ("Booking Requested", events.BOOKING_REQUESTED),
    ("Booking Rejected", events.BOOKING_REJECTED),
    ("Meeting Ended", events.MEETING_ENDED),
    ("Booking No-Show Updated", events.BOOKING_NO_SHOW_UPDATED),
    ("After Hosts Cal Video No-Show", events.AFTER_HOSTS_CAL_VIDEO_NO_SHOW),
    ("After Guests Cal Video No-Show", events.AFTER_GUESTS_CAL_VIDEO_NO_SHOW),
    # Newer Cal.com only (PROTOCOL.md §1: in API v2's list, unverified in source): tick them if offered.
    ("Booking Location Updated", events.BOOKING_LOCATION_UPDATED),
    ("Booking Reassigned", events.BOOKING_REASSIGNED),
]
# What to subscribe a Calendly webhook to (PROTOCOL.md §8), with scope "organization" or "user".
CALENDLY_EVENTS = ["invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted"]


def admin_cohort_or_404(request, slug, action="change this cohort's settings"):
    """Return cohort `slug` if the user is an admin of its organization.

    Raises Http404 when the user is not a member (or there is no such cohort) and
    PermissionDenied (403, a sentence) for members who are not admins.
    """
    cohort = Cohort.objects.for_user(request.user).select_related("organization").filter(slug=slug).first()
    if cohort is None:
        raise Http404("No such cohort.")
    check_org_admin(request.user, cohort.organization, action)  # the one role rule (applications.access)
    return cohort


def _round_form(cohort, number, data=None):
    instance = InterviewRound.objects.filter(cohort=cohort, number=number).first()
    configured = instance is not None
    instance = instance or InterviewRound(cohort=cohort, number=number)
    return InterviewRoundForm(data, instance=instance, prefix=f"round{number}"), configured


def _render(request, cohort, context, status=200, template=TEMPLATE):
    with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
        return render(request, template, {"cohort": cohort, **context}, status=status)


def _page_context(request, cohort, forms=None, secrets_form=None):
    forms = forms or {}
    rounds = []
    for number in (1, 2):
        form, configured = forms.get(number) or _round_form(cohort, number)
        rounds.append({"number": number, "form": form, "configured": configured,
                       "preview": _preview(form, cohort) if form.is_bound else _saved_preview(form, cohort)})
    deliveries = list(
        cohort.deliveries.defer("body").select_related("application").order_by("-received_at", "-pk")
        [:SYNC_HEALTH_ROWS]
    )
    return {
        "rounds": rounds,
        "webhook_url": request.build_absolute_uri(cohort.webhook_path()),
        "triggers": CALCOM_TRIGGERS,
        "calendly_url": request.build_absolute_uri(cohort.webhook_path("calendly")),
        "cronofy_url": request.build_absolute_uri(cohort.webhook_path("cronofy")),
        "calendly_events": CALENDLY_EVENTS,
        "secrets_form": secrets_form or ProviderSecretsForm(),
        "deliveries": deliveries,
        "last_delivery": deliveries[0] if deliveries else None,
        "attention_count": sum(1 for d in deliveries if d.attention or d.outcome == "failed"),
        "placeholders": templating.PLACEHOLDERS,
        "contact_form": ApplicantContactForm(instance=cohort),
        # Issue 10: deliveries waiting to be finished, the spool, the Cal.com API key and syncs.
        "health": ingest.delivery_health(cohort),
        "spooled": spool.pending_count(),
        "spool_dead": spool.dead_count(),
        "api_key_form": CalcomApiKeyForm(),
        "runs": cohort.sync_runs.select_related("requested_by").prefetch_related("drift")[:3],
    }


def _saved_preview(form, cohort):
    instance = form.instance
    return _render_preview(instance, cohort, instance.invitation_subject, instance.invitation_body)


def _preview(form, cohort):
    prefix = form.prefix
    subject = form.data.get(f"{prefix}-invitation_subject", "")
    body = form.data.get(f"{prefix}-invitation_body", "")
    instance = InterviewRound(cohort=cohort, number=form.instance.number,
                              booking_url=form.data.get(f"{prefix}-booking_url", "") or form.instance.booking_url)
    days = form.data.get(f"{prefix}-book_within_days", "")
    instance.book_within_days = int(days) if str(days).isdigit() else None
    return _render_preview(instance, cohort, subject, body)


def _render_preview(instance, cohort, subject, body):
    try:
        rendered = invitations.sample_preview(instance, subject=subject, body=body, cohort=cohort)
    except templating.TemplateError as exc:
        return {"error": str(exc)}
    except ValueError:
        return {"error": "The booking page is not a valid address yet."}
    return {"subject": rendered[0], "body": rendered[1]}


@login_required
@require_http_methods(["GET"])
def cohort_settings(request, slug):
    """Show the cohort's settings: round forms with previews, webhook set-up, sync health."""
    cohort = admin_cohort_or_404(request, slug)
    return _render(request, cohort, _page_context(request, cohort))


@login_required
@require_POST
def round_save(request, slug, number):
    """Save round `number`'s form; with `preview` in the POST, only show the preview.

    Redirects to the settings page on success (a message says what was saved);
    renders the page again with the errors (422) otherwise.
    """
    cohort = admin_cohort_or_404(request, slug)
    number = int(number)  # the URL allows only 1 and 2
    form, configured = _round_form(cohort, number, request.POST)
    if "preview" not in request.POST and form.is_valid():
        interview_round = form.save(commit=False)
        interview_round.updated_at = timezone.now()
        interview_round.save()
        messages.success(request, f"Round {number} saved.")
        return HttpResponseRedirect(reverse("scheduling:settings", args=[cohort.slug]) + f"#round-{number}")
    status = 200 if "preview" in request.POST else 422
    return _render(request, cohort, _page_context(request, cohort, {number: (form, configured)}), status=status)


@login_required
@require_POST
def round_preview(request, slug, number):
    """Return round `number`'s invitation preview fragment for the posted drafts (htmx, as you type)."""
    cohort = admin_cohort_or_404(request, slug)
    number = int(number)
    form, _ = _round_form(cohort, number, request.POST)
    context = {"round": {"number": number, "preview": _preview(form, cohort)}}
    return _render(request, cohort, context, template=f"{TEMPLATE}#round-preview")


@login_required
@require_POST
def round_delete(request, slug, number):
    """Remove round `number`'s configuration (its invitations stay on the applications)."""
    cohort = admin_cohort_or_404(request, slug)
    number = int(number)
    deleted, _ = InterviewRound.objects.filter(cohort=cohort, number=number).delete()
    if deleted:
        messages.success(request, f"Round {number} removed: no links, invitations or reminders for it until "
                                  "it is set up again.")
    return HttpResponseRedirect(reverse("scheduling:settings", args=[cohort.slug]))


@login_required
@require_POST
def provider_secrets(request, slug):
    """Save the cohort's Calendly signing key and Cronofy client secret.

    Redirects to the webhook section with a message on success; renders the page
    again with the errors (422) otherwise.
    """
    cohort = admin_cohort_or_404(request, slug, action="change the cohort's provider keys")
    form = ProviderSecretsForm(request.POST)
    if form.is_valid():
        changed = form.save(cohort)
        names = {"calendly_signing_key": "Calendly signing key", "cronofy_client_secret": "Cronofy client secret"}
        messages.success(request, "Saved: " + ", ".join(names[c] for c in changed) + "." if changed
                         else "Nothing changed: both fields were left blank.")
        return HttpResponseRedirect(reverse("scheduling:settings", args=[cohort.slug]) + "#other-providers")
    return _render(request, cohort, _page_context(request, cohort, secrets_form=form), status=422)


@login_required
@require_http_methods(["GET", "POST"])
def rotate_secret(request, slug):
    """GET: ask to confirm rotating the webhook secret. POST: rotate it and show the new one."""
    cohort = admin_cohort_or_404(request, slug, action="rotate the webhook secret")
    if request.method == "POST":
        cohort.rotate_webhook_secret()
        messages.warning(request, "New webhook secret made. The old one stopped working now: paste the new "
                                  "one into Cal.com's webhook form before the next booking.")
        return HttpResponseRedirect(reverse("scheduling:settings", args=[cohort.slug]) + "#webhook")
    return _render(request, cohort, {}, template="scheduling/rotate_secret.html")


@login_required
@require_POST
def applicant_contact(request, slug):
    """Save the cohort's reply-to address; back to the settings page (422 with the error)."""
    cohort = admin_cohort_or_404(request, slug)
    form = ApplicantContactForm(request.POST, instance=cohort)
    if form.is_valid():
        form.save()
        messages.success(request, "Reply-to address saved." if cohort.reply_to_email
                         else "Reply-to address removed: applicants will be told to answer the invitation email.")
        return HttpResponseRedirect(reverse("scheduling:settings", args=[cohort.slug]) + "#contact")
    context = _page_context(request, cohort)
    context["contact_form"] = form
    return _render(request, cohort, context, status=422)
