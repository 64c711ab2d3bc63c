"""Sending invitations from the application page and from the tab (bulk). Admins only."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import invitations
from .settings_views import admin_cohort_or_404

# The tab sends at most one page of rows at a time.
BULK_LIMIT = 200
SKIP_SENTENCES = {
    invitations.NOT_WAITING: "it is not waiting for an interview",
    invitations.NO_ROUND: "its round is not set up in the cohort's settings",
    invitations.ALREADY_INVITED: "it was already invited since it started waiting (use Resend to send again)",
    invitations.BAD_TEMPLATE: "the round's invitation template has an error (see the cohort's settings)",
}


def _back(request, default):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


@login_required
@require_POST
def invite_application(request, slug, pk):
    """Send application `pk` the invitation for the round it waits for; `resend=1` sends it again.

    Answers with a message and a redirect (to `next`, e.g. the tab, or the
    application), so the whole page shows the new state.
    """
    cohort = admin_cohort_or_404(request, slug, action="send invitations")
    application = get_object_or_404(cohort.applications.select_related("cohort__organization"), pk=pk)
    resend = request.POST.get("resend") == "1"
    result = invitations.invite(application, user=request.user, resend=resend)
    if result.invitation is not None:
        done = f"{'Invitation sent again' if resend else 'Invitation sent'} to {application.contact_email}."
        level = messages.SUCCESS
    else:
        done = f"Not sent: {SKIP_SENTENCES[result.skipped]}."
        level = messages.WARNING
    messages.add_message(request, level, done)
    return _back(request, reverse("applications:detail", args=[cohort.slug, application.pk]))


@login_required
@require_POST
def invite_selected(request, slug):
    """Invite every selected row of the tab (`application` ids); redirect back with a summary.

    The summary says how many were sent and how many were skipped, and why.
    """
    cohort = admin_cohort_or_404(request, slug, action="send invitations")
    ids = [value for value in request.POST.getlist("application") if value.isdigit()][:BULK_LIMIT]
    back = reverse("applications:list", args=[cohort.slug])
    if not ids:
        messages.warning(request, "Select at least one application to invite.")
        return _back(request, back)
    rows = cohort.applications.filter(pk__in=ids).select_related("cohort__organization").order_by("pk")
    summary = invitations.invite_many(rows, user=request.user)
    messages.add_message(request, messages.SUCCESS if summary.sent else messages.WARNING, summary.sentence())
    return _back(request, back)
