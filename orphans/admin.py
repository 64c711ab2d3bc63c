from django.contrib import admin
from django.utils import timezone

from .models import OrphanedInterview


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "Unresolved"), ("yes", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(OrphanedInterview)
class OrphanedInterviewAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "cohort", "start", "reason", "created_at", "resolution",
                    "resolved_at", "alert_state")
    list_filter = (ResolvedFilter, "reason", "resolution", "alert_state", "cohort")
    search_fields = ("email", "name", "booking_uid", "ical_uid")
    list_select_related = ("cohort",)
    raw_id_fields = ("delivery", "application", "resolved_by")
    actions = ["dismiss"]

    @admin.action(description="Dismiss selected orphaned interviews")
    def dismiss(self, request, queryset):
        count = queryset.filter(resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=request.user,
            resolution=OrphanedInterview.Resolution.DISMISSED,
            dismiss_reason=f"Dismissed in admin by {request.user}",
        )
        self.message_user(request, f"Dismissed {count}.")
