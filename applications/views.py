"""Pages for admins: home, the cohort's Applications tab and its fragments, an application, settings.

Every view needs a login and answers 404 for a cohort outside the user's
organizations, so a stranger cannot even learn that a slug exists. Other apps'
rows (webhook deliveries, orphaned interviews) are reached through their
reverse relations on Cohort and Application, keeping `applications` free of
imports from them (STYLE.md, import direction).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from scheduling.status import InvalidTransition, Status, StatusConflict

from .access import cohorts_with_role, org_admin_required
from .forms import PAGE_SIZE, SORT_CHOICES, StatusChangeForm, TabFilters, UserSettingsForm
from .models import Application, Cohort, UserSettings

LIST_TEMPLATE = "applications/application_list.html"
DETAIL_TEMPLATE = "applications/application_detail.html"


def _cohort_or_404(request, slug):
    """Return the cohort `slug` (with `viewer_role`) if the user is a member of its organization, else raise Http404."""
    cohorts = cohorts_with_role(request.user).select_related("organization")
    return get_object_or_404(cohorts, slug=slug)


def _render(request, template, context, cohort, status=200):
    """Render with dates in the viewer's time zone for `cohort`'s organization."""
    with timezone.override(UserSettings.time_zone_for(request.user, cohort.organization)):
        response = render(request, template, {"cohort": cohort, **context}, status=status)
    # The same URL answers a fragment to htmx and a page to the browser: caches must not mix them.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _wants_fragment(request):
    # A history restore after a cache miss asks for the whole page under htmx's header.
    return bool(request.htmx) and not request.htmx.history_restore_request


@login_required
@require_GET
def home(request):
    """List the user's cohorts with how many applications each has in every status."""
    cohorts = list(
        Cohort.objects.for_user(request.user).select_related("organization")
        .order_by("organization__name", "-created_at", "name")
    )
    counts = {}
    rows = (
        Application.objects.filter(cohort__in=cohorts).order_by()
        .values_list("cohort", "status").annotate(n=Count("*"))
    )
    for cohort_id, status, n in rows:
        counts.setdefault(cohort_id, {})[status] = n
    for cohort in cohorts:
        by_status = counts.get(cohort.pk, {})
        cohort.total = sum(by_status.values())
        cohort.status_counts = [(s.value, s.label, by_status.get(s.value, 0)) for s in Status]
    return render(request, "applications/home.html", {"cohorts": cohorts})


@login_required
@require_GET
def application_list(request, slug):
    """Show the cohort's Applications tab; to htmx, only its table fragment.

    Filters come from the query string (TabFilters), so the same URL serves a
    bookmark, a reload, the plain-GET form and htmx's requests. The number of
    queries does not depend on the number of applications.
    """
    cohort = _cohort_or_404(request, slug)
    filters = TabFilters.from_query(request.GET)
    applications = filters.apply(cohort.applications.with_status_since())
    counts = cohort.applications.status_counts()
    paginator = Paginator(applications, PAGE_SIZE)
    known = filters.count_from(counts)
    if known is not None:
        # The chips' GROUP BY already counted these rows: spare the database a second
        # pass over the cohort (the slowest query at 100,000 applications).
        paginator.count = known
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "chips": [
            {"value": s.value, "label": s.label, "count": counts.get(s.value, 0),
             "selected": s.value in filters.statuses}
            for s in Status
        ],
        "sort_choices": SORT_CHOICES,
        "now": timezone.now(),
    }
    if _wants_fragment(request):
        # The chip counts live in the filter bar, outside the table: refresh them out of band.
        return _render(request, f"{LIST_TEMPLATE}#application-table", {**context, "oob": True}, cohort)
    context["orphan_count"] = cohort.orphans.unresolved().count()
    return _render(request, LIST_TEMPLATE, context, cohort)


@login_required
@require_GET
def orphan_badge(request, slug):
    """Return the filter bar's "Orphaned N" badge alone, for htmx to poll."""
    cohort = _cohort_or_404(request, slug)
    context = {"orphan_count": cohort.orphans.unresolved().count()}
    return _render(request, f"{LIST_TEMPLATE}#orphan-badge", context, cohort)


def _detail_context(application, form):
    return {
        "application": application,
        "form": form,
        "timeline": application.status_changes.select_related("delivery", "user"),
        # The raw bodies are large and only the admin shows them.
        "deliveries": application.deliveries.defer("body").order_by("-received_at", "-pk"),
        "alternate_emails": application.alternate_emails.order_by("email"),
        "now": timezone.now(),
    }


@login_required
@require_GET
def application_detail(request, slug, pk):
    """Show one application: contact, interview, status timeline, webhook deliveries, status form."""
    cohort = _cohort_or_404(request, slug)
    application = get_object_or_404(cohort.applications.all(), pk=pk)
    context = _detail_context(application, StatusChangeForm(application))
    return _render(request, DETAIL_TEMPLATE, context, cohort)


@login_required
@require_POST
@org_admin_required(action="change statuses")
def application_change_status(request, slug, pk):
    """Move the application to the posted status through `Application.move_to`.

    Without htmx: a message and a redirect to the application (an invalid form
    renders the page again, 422). With htmx: the status panel alone, and a
    `statusChanged` event so the tab's table refreshes itself.
    """
    cohort = _cohort_or_404(request, slug)
    application = get_object_or_404(cohort.applications.all(), pk=pk)
    form = StatusChangeForm(application, request.POST)
    moved = None
    if form.is_valid():
        try:
            moved = application.move_to(
                Status(form.cleaned_data["status"]), user=request.user,
                note=form.cleaned_data["note"],
            )
        except StatusConflict:
            # Another admin or a webhook won the race between our read and our UPDATE.
            form.add_error(None, "Someone else changed this application first; nothing was changed.")
        except InvalidTransition as exc:
            form.add_error("status", str(exc))
    if moved is None:
        # Show the errors above a fresh form built from the stored status, so the
        # next try offers what is allowed now rather than what was seen before.
        errors = [message for messages_ in form.errors.values() for message in messages_]
        application.refresh_from_db()
        context = _detail_context(application, StatusChangeForm(application))
        context["errors"] = errors
        template = f"{DETAIL_TEMPLATE}#application-status" if _wants_fragment(request) else DETAIL_TEMPLATE
        return _render(request, template, context, cohort, status=422)
    done = f"Moved to “{application.status_label}”."
    if not _wants_fragment(request):
        messages.success(request, done)
        return HttpResponseRedirect(reverse("applications:detail", args=[cohort.slug, application.pk]))
    context = _detail_context(application, StatusChangeForm(application))
    context["done"] = done
    response = _render(request, f"{DETAIL_TEMPLATE}#application-status", context, cohort)
    return trigger_client_event(response, "statusChanged")


@login_required
@require_http_methods(["GET", "POST"])
def user_settings(request):
    """Let the user pick the time zone dates are shown in (empty: the organization's)."""
    instance = UserSettings.objects.filter(user=request.user).first() or UserSettings(user=request.user)
    form = UserSettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return HttpResponseRedirect(reverse("applications:settings"))
    return render(request, "applications/user_settings.html", {"form": form})
