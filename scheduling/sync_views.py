"""The cohort's Cal.com sync page: API key, sync health, runs and their drift, "Sync now".

Members of the cohort's organization may read it; changing the key and starting a
sync are for its admins (a member gets 403 with a sentence, anyone else 404, so a
stranger cannot learn that a slug exists). Every POST works without htmx (message +
redirect); with htmx the view answers the fragment it changed.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from applications.models import Cohort, Membership, UserSettings

from . import ingest, spool, sync
from .forms import CalcomApiKeyForm
from .models import SyncRun
from .tasks import sync_calcom_cohort

logger = logging.getLogger(__name__)

TEMPLATE = "scheduling/sync.html"
RUNS_SHOWN = 10


def _cohort_or_404(request, slug):
    cohorts = Cohort.objects.for_user(request.user).select_related("organization")
    return get_object_or_404(cohorts, slug=slug)


def _is_admin(request, cohort):
    return Membership.objects.is_org_admin(request.user, cohort.organization)


def _wants_fragment(request):
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(request, template, context, cohort, status=200):
    with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
        response = render(request, template, {"cohort": cohort, **context}, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _forbidden(request, cohort, sentence):
    return _render(request, TEMPLATE, {**_page_context(request, cohort), "problem": sentence}, cohort, status=403)


def _page_context(request, cohort, form=None):
    runs = list(cohort.sync_runs.select_related("requested_by").prefetch_related("drift")[:RUNS_SHOWN])
    return {
        "is_admin": _is_admin(request, cohort),
        "form": form or CalcomApiKeyForm(),
        "runs": runs,
        "running": next((r for r in runs if r.is_running), None),
        "health": ingest.delivery_health(cohort),
        # The spool is per server, not per cohort (the cohort is only known by its key inside a file).
        "spooled": spool.pending_count(),
        "spool_dead": spool.dead_count(),
    }


@login_required
@require_GET
def sync_health(request, slug):
    """Show the cohort's Cal.com sync: API key (last four), delivery health, recent runs and drift."""
    cohort = _cohort_or_404(request, slug)
    return _render(request, TEMPLATE, _page_context(request, cohort), cohort)


@login_required
@require_POST
def calcom_api_key(request, slug):
    """Save, replace ("rotate") or remove the cohort's Cal.com API key (org admins).

    POST `api_key` to save it, or `remove=1` to delete it. Redirects to the cohort
    settings page's Cal.com section with a message; an invalid key renders the sync
    page with the form and its error (422).
    """
    cohort = _cohort_or_404(request, slug)
    if not _is_admin(request, cohort):
        return _forbidden(request, cohort, "Only the organization's admins can change the Cal.com API key.")
    back = reverse("scheduling:settings", args=[cohort.slug]) + "#calcom-api"
    if request.POST.get("remove"):
        cohort.set_calcom_api_key("")
        messages.success(request, "The Cal.com API key was removed; scheduled syncs stop.")
        return HttpResponseRedirect(back)
    form = CalcomApiKeyForm(request.POST)
    if not form.is_valid():
        return _render(request, TEMPLATE, _page_context(request, cohort, form), cohort, status=422)
    replaced = bool(cohort.calcom_api_key)
    cohort.set_calcom_api_key(form.cleaned_data["api_key"])
    messages.success(request, f"Cal.com API key {'replaced' if replaced else 'saved'} "
                              f"(ending {cohort.calcom_api_key[-4:]}).")
    return HttpResponseRedirect(back)


@login_required
@require_POST
def sync_now(request, slug):
    """Start a sync of the cohort now (org admins), as a Celery task after commit.

    With htmx: the progress fragment, which polls itself until the run ends.
    Without: a message and a redirect to the sync page. A sync already running
    is shown instead of starting a second one.
    """
    cohort = _cohort_or_404(request, slug)
    if not _is_admin(request, cohort):
        return _forbidden(request, cohort, "Only the organization's admins can start a sync.")
    problem = ""
    try:
        run = sync.start_sync(cohort, trigger=SyncRun.Trigger.MANUAL, user=request.user)
    except sync.SyncAlreadyRunning as exc:
        run, problem = exc.run, str(exc)
    except sync.SyncError as exc:
        run, problem = None, str(exc)
    else:
        transaction.on_commit(lambda: _queue(run))
    if not _wants_fragment(request):
        if problem:
            messages.error(request, problem)
        else:
            messages.success(request, "Sync started: bookings are being checked against Cal.com.")
        return HttpResponseRedirect(reverse("scheduling:sync_health", args=[cohort.slug]))
    if run is not None:
        run.refresh_from_db()  # eager mode (no broker) ran it already
    context = {"run": run, "problem": problem}
    response = _render(request, f"{TEMPLATE}#sync-progress", context, cohort, status=422 if run is None else 200)
    return _announce(response, run)


def _queue(run):
    """Send the run to a worker; if the broker is unreachable, end it "failed" so it holds no lock."""
    try:
        sync_calcom_cohort.delay(run.pk)
    except Exception as exc:  # kombu's OperationalError, a timeout, or the eager run's own error
        logger.exception("Could not run or queue sync #%s", run.pk)
        SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.FAILED, finished_at=timezone.now(),
            error=f"The sync could not be started ({type(exc).__name__}); try again in a minute.")


@login_required
@require_GET
def sync_progress(request, slug, pk):
    """Return one run's progress fragment (htmx polls it every second while it runs)."""
    cohort = _cohort_or_404(request, slug)
    run = get_object_or_404(cohort.sync_runs.prefetch_related("drift"), pk=pk)
    if not _wants_fragment(request):
        return HttpResponseRedirect(reverse("scheduling:sync_health", args=[cohort.slug]))
    return _announce(_render(request, f"{TEMPLATE}#sync-progress", {"run": run}, cohort), run)


def _announce(response, run):
    # A finished run that changed applications: the tab's table and badge refresh themselves.
    if run is not None and not run.is_running and run.changes_made:
        trigger_client_event(response, "statusChanged")
    return response
