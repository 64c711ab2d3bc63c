"""Admin actions on one application's schedule: schedule offline, edit, clear, confirm, and the applicant's link.

Every action is for the organization's admins only: a stranger gets 404 (the same
as for a cohort that does not exist), a member who is not an admin 403 with a
sentence. Each POST works without JavaScript and redirects to the application page
with a message; the work is in scheduling/handmade.py and scheduling/applicant.py.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from applications.access import check_org_admin
from applications.models import Cohort, UserSettings, time_zone_or_utc

from . import handmade
from .applicant import revoke_tokens, token_for
from .schedule_forms import OfflineForm

FORM_TEMPLATE = "scheduling/offline_form.html"


def _admin_application_or_404(request, slug, pk):
    """Return (cohort, application) when the user is an admin of the cohort's organization.

    Raises Http404 for a user outside the organization (or an unknown cohort or
    application) and PermissionDenied (403) for a member who is not an admin.
    """
    cohort = get_object_or_404(Cohort.objects.for_user(request.user).select_related("organization"),
                               slug=slug)
    application = get_object_or_404(cohort.applications.all(), pk=pk)
    check_org_admin(request.user, cohort.organization, "change an interview or the applicant's link")
    return cohort, application


def _back(cohort, application):
    return HttpResponseRedirect(reverse("applications:detail", args=[cohort.slug, application.pk]))


def _form_page(request, cohort, application, form, *, editing, status=200):
    zone = UserSettings.time_zone_for(request.user, cohort.organization)
    context = {"cohort": cohort, "application": application, "form": form, "editing": editing}
    with timezone.override(zone):
        return render(request, FORM_TEMPLATE, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def offline_schedule(request, slug, pk):
    """GET: the "Schedule offline" form (time zone: the viewer's). POST: schedule it and go back.

    An invalid form comes back with its errors (422); a status that takes no interview
    comes back with the reason (409).
    """
    cohort, application = _admin_application_or_404(request, slug, pk)
    zone = UserSettings.time_zone_for(request.user, cohort.organization)
    if request.method == "GET":
        form = OfflineForm(initial={"time_zone": zone.key, "duration": 30})
        return _form_page(request, cohort, application, form, editing=False)
    form = OfflineForm(request.POST)
    if not form.is_valid():
        return _form_page(request, cohort, application, form, editing=False, status=422)
    try:
        done = handmade.schedule_offline(application, user=request.user, **_when(form))
    except handmade.NotAllowed as exc:
        form.add_error(None, str(exc))
        return _form_page(request, cohort, application, form, editing=False, status=409)
    messages.success(request, done.message)
    return _back(cohort, application)


@login_required
@require_http_methods(["GET", "POST"])
def offline_edit(request, slug, pk):
    """GET: the current offline or applicant-reported interview in the form. POST: move it."""
    cohort, application = _admin_application_or_404(request, slug, pk)
    booking = application.bookings.filter(uid=application.interview_booking_uid).first() \
        if application.interview_booking_uid else None
    if booking is None or not booking.by_hand:
        messages.error(request, "There is no offline or applicant-reported interview to edit.")
        return _back(cohort, application)
    if request.method == "GET":
        zone = time_zone_or_utc(booking.time_zone)
        local = booking.start.astimezone(zone)
        minutes = int((booking.end - booking.start).total_seconds() // 60) if booking.end else 30
        form = OfflineForm(initial={
            "date": local.date(), "time": local.time(), "time_zone": zone.key,
            "duration": minutes, "meeting_url": booking.meeting_url, "location": booking.location,
            "note": booking.note,
        })
        return _form_page(request, cohort, application, form, editing=True)
    form = OfflineForm(request.POST)
    if not form.is_valid():
        return _form_page(request, cohort, application, form, editing=True, status=422)
    try:
        done = handmade.edit_interview(application, user=request.user, **_when(form))
    except handmade.NotAllowed as exc:
        form.add_error(None, str(exc))
        return _form_page(request, cohort, application, form, editing=True, status=409)
    messages.success(request, done.message)
    return _back(cohort, application)


def _when(form):
    data = form.cleaned_data
    return {"start": data["start"], "end": data["end"], "time_zone": data["time_zone"],
            "meeting_url": data["meeting_url"], "location": data["location"], "note": data["note"]}


@login_required
@require_POST
def offline_clear(request, slug, pk):
    """Cancel the current offline or applicant-reported interview; `*_scheduled` returns to waiting."""
    cohort, application = _admin_application_or_404(request, slug, pk)
    try:
        done = handmade.clear_interview(application, user=request.user,
                                        reason=request.POST.get("reason", "").strip())
    except handmade.NotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.message)
    return _back(cohort, application)


@login_required
@require_POST
def applicant_confirm(request, slug, pk):
    """Confirm the interview the applicant reported; the Pipeline stops saying "unverified"."""
    cohort, application = _admin_application_or_404(request, slug, pk)
    try:
        done = handmade.confirm_applicant_booking(application, user=request.user)
    except handmade.NotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.message)
    return _back(cohort, application)


@login_required
@require_POST
def applicant_link_revoke(request, slug, pk):
    """Revoke the applicant's page link: it answers 404 from now on; the next invitation has a new one."""
    cohort, application = _admin_application_or_404(request, slug, pk)
    if revoke_tokens(application, user=request.user):
        messages.success(request, "The applicant's link no longer works. The next invitation carries a new one.")
    else:
        messages.info(request, "The applicant had no working link to revoke.")
    return _back(cohort, application)


@login_required
@require_POST
def applicant_link_issue(request, slug, pk):
    """Issue the applicant's page link now (or keep the working one), to copy into an email."""
    cohort, application = _admin_application_or_404(request, slug, pk)
    token_for(application)
    messages.success(request, "The applicant's page link is ready to copy below.")
    return _back(cohort, application)
