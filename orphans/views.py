"""Orphaned interviews, for admins (the matching itself is issue 4's; this is the list it extends)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from applications.models import Cohort


@login_required
@require_GET
def orphan_list(request, slug):
    """List the cohort's unresolved orphaned interviews; to htmx, only the list (the tab's dialog)."""
    cohort = get_object_or_404(
        Cohort.objects.for_user(request.user).select_related("organization"), slug=slug
    )
    orphans = cohort.orphans.unresolved().order_by("start", "pk")
    template = "orphans/orphan_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#orphan-list"
    return render(request, template, {"cohort": cohort, "orphans": orphans})
