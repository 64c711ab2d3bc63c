"""Pages for admins: home, the cohort's Applications tab and its fragments, an application, settings.

Every view needs a login and answers 404 for a cohort outside the user's
organizations, so a stranger cannot even learn that a slug exists. Other apps'
rows (webhook deliveries, orphaned interviews) are reached through their
reverse relations on Cohort and Application, keeping `applications` free of
imports from them (STYLE.md, import direction).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from scheduling.status import ON_BOOKING, SCHEDULED, InvalidTransition, Status, StatusConflict

from .access import check_org_admin, cohorts_with_role, org_admin_required
from . import pipeline, timeline
from .export import csv_response
from .forms import (
    PAGE_SIZE, SORT_CHOICES, ReopenForm, StatusChangeForm, TabFilters, UserSettingsForm,
)
from .models import Application, Cohort, Membership, UserSettings

LIST_TEMPLATE = "applications/application_list.html"
DETAIL_TEMPLATE = "applications/application_detail.html"


def _cohort_or_404(request, slug):
    """Return the cohort `slug` (with `viewer_role`) if the user is a member of its organization, else raise Http404."""
    cohorts = cohorts_with_role(request.user).select_related("organization")
    return get_object_or_404(cohorts, slug=slug)


def _viewer_tz(request, cohort):
    """Return the ZoneInfo the viewer reads `cohort`'s dates in (read once per request)."""
    if getattr(request, "_viewer_tz", None) is None:
        request._viewer_tz = UserSettings.time_zone_for(request.user, cohort.organization)
    return request._viewer_tz


def can_edit(request, cohort):
    """Return True when the user may change `cohort`'s data (status, matching): an org admin.

    Cached on the request; templates get it as `can_edit` and hide the controls otherwise.
    """
    cache = request.__dict__.setdefault("_can_edit", {})
    if cohort.organization_id not in cache:
        cache[cohort.organization_id] = Membership.objects.is_org_admin(request.user, cohort.organization)
    return cache[cohort.organization_id]


def _render(request, template, context, cohort, status=200, tz=None):
    """Render with dates in the viewer's time zone for `cohort`'s organization."""
    tz = tz or _viewer_tz(request, cohort)
    context = {"cohort": cohort, "can_edit": can_edit(request, cohort), **context}
    with timezone.override(tz):
        response = render(request, template, context, status=status)
    # The same URL answers a fragment to htmx and a page to the browser: caches must not mix them.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _fragment_etag(request, cohort, tz, now):
    """Return the ETag of the tab's fragments for this viewer at `now`.

    The cohort's change stamp, the minute (labels such as "Now", "Today 14:00" and
    "Waiting 3 days" move with the clock), the viewer's zone and rights: all known
    without counting a single application.
    """
    return f'W/"{cohort.version}.{int(now.timestamp()) // 60}.{tz}.{int(can_edit(request, cohort))}"'


def _not_modified(request, cohort, tz, now):
    """Return a 304 when the client's If-None-Match is this fragment's ETag, else None."""
    etag = _fragment_etag(request, cohort, tz, now)
    response = get_conditional_response(request, etag=etag)
    if response is not None:
        patch_vary_headers(response, ["HX-Request"])
    return response, etag


def _with_etag(response, etag):
    response["ETag"] = etag
    # Revalidate every time: the poll asks with If-None-Match itself (static/app.js).
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _wants_fragment(request):
    # A history restore after a cache miss asks for the whole page under htmx's header.
    return bool(request.htmx) and not request.htmx.history_restore_request


@login_required
@require_GET
def home(request):
    """List the user's cohorts: what needs attention, today's and tomorrow's interviews, counts.

    Each count links to the tab filtered to those rows. A few queries per cohort. Archived
    cohorts are left out unless `?archived=1` (then only they are listed).
    """
    show_archived = request.GET.get("archived") == "1"
    mine = Cohort.objects.for_user(request.user)
    archived_count = mine.filter(archived_at__isnull=False).count()
    cohorts = list(
        mine.filter(archived_at__isnull=not show_archived).select_related("organization")
        .order_by("organization__name", "-created_at", "name")
    )
    counts = {}
    rows = (
        Application.objects.filter(cohort__in=cohorts).order_by()
        .values_list("cohort", "status").annotate(n=Count("*"))
    )
    for cohort_id, status, n in rows:
        counts.setdefault(cohort_id, {})[status] = n
    now = timezone.now()
    for cohort in cohorts:
        by_status = counts.get(cohort.pk, {})
        cohort.total = sum(by_status.values())
        cohort.status_counts = [(s.value, s.label, by_status.get(s.value, 0)) for s in Status]
        tz = UserSettings.time_zone_for(request.user, cohort.organization)
        cohort.attention, cohort.interviews = _attention(cohort, now, tz)
        cohort.tz = tz
    return render(request, "applications/home.html", {
        "cohorts": cohorts, "now": now, "show_archived": show_archived, "archived_count": archived_count,
        "failed_url": reverse("admin:scheduling_webhookdelivery_changelist") if request.user.is_staff else "",
    })


ATTENTION = ["held", "reschedule", "overdue", "pending", "decision"]


def _attention(cohort, now, tz):
    """Return ([(key, label, count, tab filter query)], {"today": [...], "tomorrow": [...]}) for `cohort`."""
    applications = pipeline.with_waiting_since(cohort.applications.all())
    rules = {key: pipeline.state_filter(key, now=now, overdue_days=cohort.overdue_days, tz=tz)
             for key in ATTENTION + ["today", "tomorrow"]}
    totals = applications.aggregate(**{key: Count("pk", filter=q) for key, q in rules.items()})
    labels = dict(pipeline.FILTERS)
    items = [("orphans", "Unresolved orphaned interviews", cohort.orphans.unresolved().count(), None)]
    items += [(key, labels[key], totals[key], f"?pipeline={key}&hide_declined=0") for key in ATTENTION]
    # Other apps' rows through the cohort's reverse relations (applications imports no other app).
    items.append(("failed", "Failed webhook deliveries", cohort.deliveries.filter(outcome="failed").count(), None))
    interviews = {}
    for key in ("today", "tomorrow"):
        rows = list(applications.filter(rules[key]).order_by("interview_start", "pk")[:20])
        interviews[key] = {"rows": rows, "count": totals[key], "query": f"?pipeline={key}&sort=interview"}
    return [item for item in items if item[2]], interviews


@login_required
@require_GET
def application_list(request, slug):
    """Show the cohort's Applications tab; to htmx, only its table fragment; `format=csv`: the export.

    Filters come from the query string (TabFilters), so the same URL serves a
    bookmark, a reload, the plain-GET form, htmx's requests and the CSV. The
    fragment carries an ETag (the cohort's change stamp): a poll whose
    If-None-Match still matches gets a 304 before anything is counted. The number
    of queries does not depend on the number of applications.
    """
    cohort = _cohort_or_404(request, slug)
    tz = UserSettings.time_zone_for(request.user, cohort.organization)
    now = timezone.now()
    fragment = _wants_fragment(request)
    etag = None
    if fragment:
        not_modified, etag = _not_modified(request, cohort, tz, now)
        if not_modified is not None:
            return not_modified
    filters = TabFilters.from_query(request.GET)
    applications = filters.apply(cohort.applications.all(), now=now, overdue_days=cohort.overdue_days, tz=tz)
    if request.GET.get("format") == "csv":
        return csv_response(
            applications, now=now, overdue_days=cohort.overdue_days, tz=tz,
            filename=f"{cohort.slug}-applications-{now.astimezone(tz):%Y-%m-%d}.csv",
        )
    counts = cohort.applications.status_counts()
    paginator = Paginator(applications, PAGE_SIZE)
    known = filters.count_from(counts)
    if known is not None:
        # The chips' GROUP BY already counted these rows: spare the database a second
        # pass over the cohort (the slowest query at 100,000 applications).
        paginator.count = known
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = pipeline.add_invitations(list(page.object_list), cohort)
    for a in page.object_list:
        a.pipeline = pipeline.pipeline_state(a, now=now, overdue_days=cohort.overdue_days, tz=tz)
    query = request.GET.copy()
    query.pop("page", None)
    query["format"] = "csv"
    context = {
        "filters": filters,
        "page": page,
        "chips": [
            {"value": s.value, "label": s.label, "count": counts.get(s.value, 0),
             "selected": s.value in filters.statuses}
            for s in Status
        ],
        "sort_choices": SORT_CHOICES,
        "pipeline_choices": pipeline.FILTERS,
        "csv_query": query.urlencode(),
        "now": now,
        "etag": etag or _fragment_etag(request, cohort, tz, now),
    }
    if fragment:
        # The chip counts live in the filter bar, outside the table: refresh them out of band.
        response = _render(request, f"{LIST_TEMPLATE}#application-table", {**context, "oob": True}, cohort, tz=tz)
        return _with_etag(response, etag)
    context["orphan_count"] = cohort.orphans.unresolved().count()
    return _render(request, LIST_TEMPLATE, context, cohort, tz=tz)


@login_required
@require_GET
def orphan_badge(request, slug):
    """Return the filter bar's "Orphaned N" badge alone, for htmx to poll (304 when unchanged)."""
    cohort = _cohort_or_404(request, slug)
    tz = UserSettings.time_zone_for(request.user, cohort.organization)
    not_modified, etag = _not_modified(request, cohort, tz, timezone.now())
    if not_modified is not None:
        return not_modified
    context = {"orphan_count": cohort.orphans.unresolved().count(), "etag": etag}
    return _with_etag(_render(request, f"{LIST_TEMPLATE}#orphan-badge", context, cohort, tz=tz), etag)


# The application page lists this many of the newest bookings (real applications have a handful).
BOOKINGS_SHOWN = 20


def _bookings_context(application):
    """Return {bookings, current_booking}: the newest bookings (one query) and the current one."""
    bookings = list(application.bookings.select_related("verified_by", "created_by")
                    .order_by("-created_at", "-pk")[:BOOKINGS_SHOWN])
    current = None
    if application.interview_booking_uid:
        current = next((b for b in bookings if b.uid == application.interview_booking_uid), None) or (
            application.bookings.select_related("verified_by", "created_by")
            .filter(uid=application.interview_booking_uid).first())
    return {"bookings": bookings, "current_booking": current}


def _detail_context(request, application, form, reopen_form=None):
    tz = _viewer_tz(request, application.cohort)
    timeline_page, items = timeline.page(application, request.GET.get("page"), tz)
    return {
        "application": application,
        "form": form,
        "reopen_form": reopen_form or (ReopenForm(application) if application.reopen_statuses() else None),
        "timeline": items,
        "timeline_page": timeline_page,
        # The raw bodies are large and only the admin shows them.
        "deliveries": application.deliveries.defer("body").order_by("-received_at", "-pk"),
        "alternate_emails": application.alternate_emails.order_by("email"),
        # Bookings an admin matched here by hand, each with its Unmatch button.
        "matched_orphans": application.matched_orphans.filter(resolution="matched").order_by("-resolved_at"),
        "now": timezone.now(),
        # Issue 9: the current interview's own row (offline, the applicant's word, or a
        # provider's) and the applicant's page link; the schedule's history is on the timeline. Issue 11: every
        # booking of the application, with who moved or cancelled it and why.
        **_bookings_context(application),
        "applicant_token": application.applicant_tokens.filter(revoked_at__isnull=True).first(),
        "can_schedule": application.status in ON_BOOKING or application.status in SCHEDULED,
        "site_url": settings.SITE_URL,
    }


@login_required
@require_GET
def application_detail(request, slug, pk):
    """Show one application: contact, interview, status timeline, webhook deliveries, status form."""
    cohort = _cohort_or_404(request, slug)
    application = get_object_or_404(cohort.applications.all(), pk=pk)
    context = _detail_context(request, application, StatusChangeForm(application))
    pipeline.add_invitations([application], cohort)
    context["pipeline"] = pipeline.pipeline_state(
        application, now=context["now"], overdue_days=cohort.overdue_days, tz=_viewer_tz(request, cohort),
    )
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
    application.cohort = cohort  # in hand: move_to refuses an archived cohort's applications
    if form.is_valid() and form.needs_confirmation and not cohort.is_archived:
        # A decision is confirmed on a second post: the same form, asking first (no script needed).
        context = _detail_context(request, application, form)
        context["confirming"] = Status(form.cleaned_data["status"])
        template = f"{DETAIL_TEMPLATE}#application-status" if _wants_fragment(request) else DETAIL_TEMPLATE
        return _render(request, template, context, cohort)
    elif form.is_valid():
        try:
            moved = application.move_to(
                Status(form.cleaned_data["status"]), user=request.user,
                note=form.cleaned_data["note"],
            )
        except StatusConflict:
            # Another admin or a webhook won the race between our read and our UPDATE.
            form.add_error(None, "Someone else changed this application first; nothing was changed.")
        except InvalidTransition as exc:
            form.add_error(None, str(exc))
    return _status_answer(request, cohort, application, form, moved, "Moved to “{}”.")


@login_required
@require_POST
def application_reopen(request, slug, pk):
    """Reopen a decision (Accepted, Waitlist, Declined) with a reason: org admins only.

    Goes through `Application.move_to(..., reopen=True)`, the state machine's REOPEN
    table, and is recorded in the timeline like any change. Answers like
    `application_change_status` (htmx: the status panel and `statusChanged`).
    """
    cohort = _cohort_or_404(request, slug)
    check_org_admin(request.user, cohort.organization, "reopen a decision")
    application = get_object_or_404(cohort.applications.all(), pk=pk)
    form = ReopenForm(application, request.POST)
    moved = None
    application.cohort = cohort  # in hand: move_to refuses an archived cohort's applications
    if form.is_valid():
        try:
            moved = application.move_to(
                Status(form.cleaned_data["status"]), user=request.user,
                note=form.cleaned_data["reason"], reopen=True,
            )
        except StatusConflict:
            form.add_error(None, "Someone else changed this application first; nothing was reopened.")
        except InvalidTransition as exc:
            form.add_error(None, str(exc))
    return _status_answer(request, cohort, application, form, moved, "Reopened: now “{}”.")


def _status_answer(request, cohort, application, form, moved, done):
    """Answer a status-change or reopen POST once `move_to` ran (`moved`) or refused (None).

    Refused: the status panel at 422 with the form's errors as sentences. Moved: a
    redirect with a message, or (htmx) the fresh panel and `statusChanged`; `done` is
    the message, with "{}" standing for the new status's label.
    """
    if moved is None:
        # Show the errors above a fresh form built from the stored status, so the
        # next try offers what is allowed now rather than what was seen before.
        errors = [message for messages_ in form.errors.values() for message in messages_]
        application.refresh_from_db()
        context = _detail_context(request, application, StatusChangeForm(application))
        context["errors"] = errors
        template = f"{DETAIL_TEMPLATE}#application-status" if _wants_fragment(request) else DETAIL_TEMPLATE
        return _render(request, template, context, cohort, status=422)
    done = done.format(application.status_label)
    if not _wants_fragment(request):
        messages.success(request, done)
        return HttpResponseRedirect(reverse("applications:detail", args=[cohort.slug, application.pk]))
    context = _detail_context(request, application, StatusChangeForm(application))
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
