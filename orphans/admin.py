from django.contrib import admin, messages
from django.db import transaction

from applications.admin_audit import AuditedAdmin, register_history

from applications.admin_scoping import OrganizationScopedAdmin

from .models import OrphanedInterview
from .services import OrphanConflict, dismiss_orphan, match_orphan, restore_orphan, unmatch_orphan


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


def _dismiss_action(reason):
    def action(modeladmin, request, queryset):
        done = 0
        for orphan in queryset.filter(resolved_at__isnull=True):
            try:
                dismiss_orphan(orphan, user=request.user, reason=reason)
                done += 1
            except OrphanConflict:
                pass  # resolved meanwhile: nothing to do
        modeladmin.message_user(request, f"Dismissed {done} as {reason.label.lower()}.")

    action.__name__ = f"dismiss_{reason.value}"
    return admin.action(description=f"Dismiss selected as {reason.label.lower()}")(action)


@admin.register(OrphanedInterview)
class OrphanedInterviewAdmin(OrganizationScopedAdmin, AuditedAdmin):
    """Orphans for staff. Resolve one by setting its application and saving (the same match as
    the modal's); changing the application of a matched one unmatches it and matches it again
    (its booking moves too); clearing it unmatches. Dismiss, restore and re-send alerts in bulk
    with the actions. Orphans are never deleted; their history keeps every resolution."""

    list_display = ("email", "name", "cohort", "start", "reason", "created_at", "resolution",
                    "resolved_at", "alert_state")
    list_filter = (ResolvedFilter, "reason", "resolution", "alert_state", "cohort")
    search_fields = ("email", "name", "booking_uid", "ical_uid", "event_type")
    list_select_related = ("cohort",)
    raw_id_fields = ("delivery", "application", "resolved_by")
    readonly_fields = ("resolved_at", "resolved_by", "resolution", "dismiss_reason", "added_email",
                       "alert_state", "alert_sent_at", "alert_attempts", "alert_last_error",
                       "alert_claimed_at")

    def has_delete_permission(self, request, obj=None):
        return False
    actions = [*(_dismiss_action(r) for r in OrphanedInterview.DismissReason), "restore", "send_alert_again"]

    def save_model(self, request, obj, form, change):
        """Save; an application set on an unresolved orphan matches it through match_orphan,
        a changed one on a matched orphan goes through unmatch_orphan (then match_orphan)."""
        application = obj.application
        matched = obj.resolution == OrphanedInterview.Resolution.MATCHED
        if change and "application" in form.changed_data and matched:
            self._reassign(request, obj, application)
            return
        if change and "application" in form.changed_data and application and not obj.is_resolved:
            obj.application = None
            super().save_model(request, obj, form, change)
            try:
                sentence = match_orphan(obj, application, user=request.user)
            except (OrphanConflict, ValueError) as exc:
                self.message_user(request, f"Not matched: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Matched to {application.applicant_name}. {sentence}")
            return
        super().save_model(request, obj, form, change)

    def _reassign(self, request, obj, application):
        # Both steps or neither: a failed match must not leave the orphan unmatched.
        try:
            with transaction.atomic():
                sentence = unmatch_orphan(obj, user=request.user)
                if application is not None:
                    sentence = match_orphan(obj, application, user=request.user)
        except (OrphanConflict, ValueError) as exc:
            self.message_user(request, f"Not changed: {exc}", messages.ERROR)
            return
        target = f"Moved to {application.applicant_name}" if application else "Unmatched"
        self.message_user(request, f"{target}. {sentence}")

    @admin.action(description="Restore selected dismissed orphans")
    def restore(self, request, queryset):
        done = 0
        for orphan in queryset.filter(resolution=OrphanedInterview.Resolution.DISMISSED):
            try:
                restore_orphan(orphan, user=request.user)
                done += 1
            except OrphanConflict:
                pass
        self.message_user(request, f"Restored {done}.")

    @admin.action(description="Send the alert again (failed or already sent)")
    def send_alert_again(self, request, queryset):
        # Back to pending: the beat sweep sends them within a few minutes, each claimed once.
        count = queryset.filter(resolved_at__isnull=True).exclude(
            alert_state__in=[OrphanedInterview.AlertState.PENDING, OrphanedInterview.AlertState.SENDING]
        ).update(alert_state=OrphanedInterview.AlertState.PENDING, alert_attempts=0,
                 alert_claimed_at=None)
        self.message_user(request, f"{count} alert(s) queued for the next sweep.")


register_history(OrphanedInterview)
