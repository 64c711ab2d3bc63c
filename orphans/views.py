"""The orphaned interviews of a cohort: list, suggestions and search, match, dismiss, restore.

The Applications tab's Orphaned badge loads `orphan_list` into its `<dialog
id="orphan-modal">`; the same URL is a full page without htmx (and the link in
alert emails). Every view needs a login and answers 404 for a cohort outside the
user's organizations and for an orphan or application outside the cohort.
Every POST works without htmx (a message and a redirect). To htmx, the views
answer the refreshed list with an `HX-Trigger`: `orphanMatched` whenever the
number of unresolved orphans may have changed (the badge and the table listen),
plus `closeModal` once none is left. A refused action (someone else was first,
a closed application) answers 422 with the list and the reason, changing nothing.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from applications.access import cohorts_with_role, org_admin_required
from applications.models import Membership, UserSettings
from scheduling.status import CLOSED

from .models import OrphanedInterview
from .services import OrphanConflict, dismiss_orphan, match_orphan, restore_orphan, unmatch_orphan
from .suggestions import search_applications, suggest_applications

TEMPLATE = "orphans/orphan_list.html"
CONFIRM_TEMPLATE = "orphans/orphan_confirm.html"
# A burst can leave hundreds; the list shows the newest this many (the count says how many).
PAGE = 50


def _cohort_or_404(request, slug):
    """Return the cohort `slug` (with `viewer_role`) if the user is a member of its organization, else raise Http404."""
    cohorts = cohorts_with_role(request.user).select_related("organization")
    return get_object_or_404(cohorts, slug=slug)


def _can_edit(request, cohort):
    """Return True when the user may match, dismiss or restore: an org admin (members only read)."""
    return Membership.objects.is_org_admin(request.user, cohort.organization)


def _wants_fragment(request):
    # A history restore after a cache miss asks for the whole page under htmx's header.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(request, context, cohort, *, status=200):
    """Render the list (the fragment to htmx, else the page) in the viewer's time zone."""
    template = f"{TEMPLATE}#orphan-list" if _wants_fragment(request) else TEMPLATE
    context = {"cohort": cohort, "can_edit": _can_edit(request, cohort), **context}
    with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
        response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


SHOWS = ("open", "dismissed", "matched")


def _list_context(cohort, show, *, search_for=None, q=""):
    """Return the list's context: `show` is "open", "dismissed" or "matched"; a search for one orphan optional."""
    counts = cohort.orphans.aggregate(
        open=Count("pk", filter=Q(resolved_at__isnull=True)),
        dismissed=Count("pk", filter=Q(resolution=OrphanedInterview.Resolution.DISMISSED)),
        matched=Count("pk", filter=Q(resolution=OrphanedInterview.Resolution.MATCHED)),
    )
    rows = {
        "open": cohort.orphans.unresolved(),
        "dismissed": cohort.orphans.dismissed(),
        "matched": cohort.orphans.filter(resolution=OrphanedInterview.Resolution.MATCHED),
    }[show]
    order = ("-resolved_at", "-pk") if show == "matched" else ("-created_at", "-pk")
    orphans = list(rows.select_related("resolved_by", "application").order_by(*order)[:PAGE])
    if show == "open":
        suggestions = suggest_applications(cohort, orphans)
        for orphan in orphans:
            orphan.suggestions = suggestions[orphan.pk]
            orphan.q = q if search_for == orphan.pk else ""
            orphan.results = search_applications(cohort, q) if orphan.q else None
    return {
        "show": show, "orphans": orphans, "open_count": counts["open"],
        "dismissed_count": counts["dismissed"], "matched_count": counts["matched"],
        "archived": cohort.is_archived, "reasons": OrphanedInterview.DismissReason.choices,
        "closed": CLOSED,
    }


def _list_url(cohort, show="open", **params):
    url = reverse("orphans:list", args=[cohort.slug])
    if show != "open":
        params["show"] = show
    return f"{url}?{urlencode(params)}" if params else url


def _search_text(request):
    """Return the `q` search text, trimmed, capped, without NULs (PostgreSQL refuses them)."""
    return request.GET.get("q", "").replace("\x00", "").strip()[:100]


def _done(request, cohort, *, show, notice="", problem="", changed=True):
    """Answer a POST: to htmx the refreshed list (422 with `problem`), else a message and a redirect."""
    if not _wants_fragment(request):
        if problem:
            messages.error(request, problem)
        else:
            messages.success(request, notice)
        return HttpResponseRedirect(_list_url(cohort, show))
    context = _list_context(cohort, show)
    context.update(notice=notice, problem=problem)
    response = _render(request, context, cohort, status=422 if problem else 200)
    if changed:
        # Named for the contract with the tab (its badge and table listen for it); sent for any
        # change to the unresolved count, dismiss and restore included.
        response = trigger_client_event(response, "orphanMatched")
        # A refused action keeps the modal open: the loser of a race must read why.
        if show == "open" and not context["open_count"] and not problem:
            response = trigger_client_event(response, "closeModal")
    return response


@login_required
@require_GET
def orphan_list(request, slug):
    """List the cohort's unresolved orphans, newest first, each with suggested applications.

    `?show=dismissed` lists the dismissed ones instead (to restore). Without
    htmx, `?orphan=<pk>&q=<text>` shows a search for one orphan (the search
    box's plain-GET fallback). The number of queries does not grow with the
    number of orphans.
    """
    cohort = _cohort_or_404(request, slug)
    show = request.GET.get("show") if request.GET.get("show") in SHOWS else "open"
    try:
        search_for = int(request.GET.get("orphan", ""))
    except ValueError:
        search_for = None
    context = _list_context(cohort, show, search_for=search_for, q=_search_text(request))
    return _render(request, context, cohort)


@login_required
@require_GET
def orphan_candidates(request, slug, pk):
    """Return one orphan's candidate applications: search results for `q`, else its suggestions.

    To htmx, the candidates fragment (the search box's debounced target);
    otherwise a redirect to the list page showing the same search.
    """
    cohort = _cohort_or_404(request, slug)
    orphan = get_object_or_404(cohort.orphans.unresolved(), pk=pk)
    q = _search_text(request)
    if not _wants_fragment(request):
        return HttpResponseRedirect(f"{_list_url(cohort, orphan=orphan.pk, q=q)}#orphan-{orphan.pk}")
    orphan.q = q
    orphan.results = search_applications(cohort, q) if q else None
    if not q:
        orphan.suggestions = suggest_applications(cohort, [orphan])[orphan.pk]
    with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
        response = render(request, f"{TEMPLATE}#orphan-candidates",
                          {"cohort": cohort, "o": orphan, "closed": CLOSED,
                           "can_edit": _can_edit(request, cohort)})
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
@org_admin_required(action="match orphaned interviews")
def orphan_match(request, slug, pk):
    """Match the orphan to the posted `application` (of the same cohort) through match_orphan.

    `remember_email` (default on; the form posts "0" then the checkbox's "1")
    adds the booker's email to the application's alternate emails. When the
    application has a live interview, nothing happens until the admin confirms
    (`replace=1`) on a page showing both interviews.
    """
    cohort = _cohort_or_404(request, slug)
    orphan = get_object_or_404(cohort.orphans.all(), pk=pk)
    try:
        application_pk = int(request.POST.get("application", ""))
    except ValueError:
        raise Http404("No such application.") from None
    application = get_object_or_404(cohort.applications.all(), pk=application_pk)
    remember = (request.POST.getlist("remember_email") or ["1"])[-1] == "1"
    live = application.interview_booking_uid and not application.interview_ended_at
    if live and request.POST.get("replace") != "1" and not orphan.is_resolved:
        template = f"{CONFIRM_TEMPLATE}#orphan-confirm" if _wants_fragment(request) else CONFIRM_TEMPLATE
        context = {"o": orphan, "application": application, "remember": remember,
                   "list_url": _list_url(cohort)}
        with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
            response = render(request, template, {"cohort": cohort, **context})
        patch_vary_headers(response, ["HX-Request"])
        return response
    try:
        sentence = match_orphan(orphan, application, user=request.user, remember_email=remember)
    except OrphanConflict as exc:
        return _done(request, cohort, show="open", problem=str(exc))
    notice = f"Matched {orphan.email} to {application.applicant_name}. {sentence}"
    if remember and orphan.email.lower() != application.contact_email:
        notice += f" Their next bookings from {orphan.email} match by themselves."
    return _done(request, cohort, show="open", notice=notice)


@login_required
@require_POST
@org_admin_required(action="dismiss orphaned interviews")
def orphan_dismiss(request, slug, pk):
    """Dismiss the orphan with the posted `reason` (test booking, spam, duplicate, other)."""
    cohort = _cohort_or_404(request, slug)
    orphan = get_object_or_404(cohort.orphans.all(), pk=pk)
    reason = request.POST.get("reason", "")
    if reason not in OrphanedInterview.DismissReason.values:
        return _done(request, cohort, show="open", changed=False,
                     problem="Pick why you dismiss it: test booking, spam, duplicate or other.")
    try:
        dismiss_orphan(orphan, user=request.user, reason=reason)
    except OrphanConflict as exc:
        return _done(request, cohort, show="open", problem=str(exc))
    label = OrphanedInterview.DismissReason(reason).label.lower()
    return _done(request, cohort, show="open",
                 notice=f"Dismissed {orphan.email} as {label}. It is kept under “Dismissed”.")


@login_required
@require_POST
@org_admin_required(action="restore dismissed orphaned interviews")
def orphan_restore(request, slug, pk):
    """Put a dismissed orphan back among the unresolved ones."""
    cohort = _cohort_or_404(request, slug)
    orphan = get_object_or_404(cohort.orphans.all(), pk=pk)
    try:
        restore_orphan(orphan, user=request.user)
    except OrphanConflict as exc:
        return _done(request, cohort, show="dismissed", problem=str(exc))
    return _done(request, cohort, show="dismissed", notice=f"Restored {orphan.email} to the unresolved list.")


@login_required
@require_POST
def orphan_unmatch(request, slug, pk):
    """Undo a match (unmatch_orphan): the booking goes back among the unresolved orphans.

    Without htmx, redirects to the posted `next` (the application's page) when it
    is a local URL, else to the list of matched orphans.
    """
    cohort = _cohort_or_404(request, slug)
    if not _can_edit(request, cohort):
        raise PermissionDenied("Only an org admin can unmatch an orphaned interview.")
    orphan = get_object_or_404(cohort.orphans.select_related("application"), pk=pk)
    name = orphan.application.applicant_name if orphan.application_id else "its application"
    try:
        sentence = unmatch_orphan(orphan, user=request.user)
    except OrphanConflict as exc:
        problem, notice = str(exc), ""
    else:
        problem, notice = "", f"Unmatched {orphan.email} from {name}: it is back among the unresolved. {sentence}"
    target = request.POST.get("next", "")
    if not _wants_fragment(request) and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        (messages.error if problem else messages.success)(request, problem or notice)
        return HttpResponseRedirect(target)
    return _done(request, cohort, show="matched", notice=notice, problem=problem)
