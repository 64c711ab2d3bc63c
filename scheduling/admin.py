from django.contrib import admin, messages
from django.db.models.functions import Length
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from applications.admin_audit import AuditedAdmin, register_history
from applications.admin_scoping import OrganizationScopedAdmin, ScopedInline

from .ingest import process_delivery
from .models import (
    ApplicantToken, Booking, InterviewRound, Invitation, ScheduleChange, SyncDrift, SyncRun, WebhookDelivery,
)
from .reassign import BookingMoveRefused, move_booking


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganizationScopedAdmin):
    """Deliveries. Lists never load the raw bodies (up to 1 MiB each, 8 MiB for old rows): they
    show each body's size, counted by the database; one delivery's page shows its body."""

    list_display = ("id", "received_at", "cohort", "provider", "trigger_event", "booking_uid", "outcome",
                    "application", "match_rule", "attempts", "redeliveries", "body_size")
    list_filter = ("provider", "outcome", "trigger_event", "match_rule", "cohort")
    search_fields = ("booking_uid", "sha256", "logical_key", "detail", "error")
    list_select_related = ("cohort", "application")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    exclude = ("body",)
    readonly_fields = ("cohort", "provider", "received_at", "sha256", "trigger_event", "booking_uid",
                       "event_created_at", "logical_key", "outcome", "detail", "error", "attempts", "next_attempt_at",
                       "redeliveries", "processed_at", "application", "match_rule", "attention",
                       "duplicate_of", "pretty_json")

    class Media:
        css = {"all": ["scheduling/admin.css"]}  # no inline styles under our CSP

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body").annotate(body_bytes_count=Length("body"))

    @admin.display(description="Body size", ordering="body_bytes_count")
    def body_size(self, obj):
        return filesizeformat(obj.body_bytes_count)

    @admin.display(description="Body")
    def pretty_json(self, obj):
        return format_html('<pre class="delivery-body">{}</pre>',
                           obj.pretty_body())

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Every verified body is evidence of what a provider told us: kept for good.
        return False

    @admin.action(description="Reprocess selected deliveries (failed, unfinished or rejected)")
    def reprocess(self, request, queryset):
        done = {}
        for delivery in queryset.order_by("received_at", "pk"):
            result = process_delivery(delivery)
            done[result.outcome] = done.get(result.outcome, 0) + 1
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(done.items()))
        self.message_user(request, f"Reprocessed: {summary}.", messages.SUCCESS)


@admin.register(Booking)
class BookingAdmin(OrganizationScopedAdmin, AuditedAdmin):
    """Bookings follow their provider: only the application is editable, and moving a booking
    there goes through move_booking (both applications re-synced, both timelines told)."""

    list_display = ("uid", "attendee_key", "kind", "cohort", "application", "state", "start", "email",
                    "organizer_name", "no_show", "reschedule_uid", "request_reschedule", "last_event_at")
    list_filter = ("kind", "state", "request_reschedule", "no_show", "cohort")
    search_fields = ("uid", "attendee_key", "ical_uid", "reschedule_uid", "rescheduled_to_uid", "email",
                     "name", "organizer_email", "organizer_name")
    list_select_related = ("cohort", "application")
    raw_id_fields = ("application",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Booking._meta.fields if f.name not in ("application", "id")]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Move the booking through move_booking when its application changed; nothing else is editable."""
        if not change or "application" not in form.changed_data:
            return
        try:
            sentence = move_booking(obj, obj.application, user=request.user)
        except BookingMoveRefused as exc:
            self.message_user(request, f"Not moved: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Booking moved. {sentence}")


@admin.register(InterviewRound)
class InterviewRoundAdmin(OrganizationScopedAdmin, AuditedAdmin):
    list_display = ("cohort", "number", "booking_url", "auto_invite", "remind_after_days", "max_reminders")
    list_filter = ("auto_invite", "number")
    search_fields = ("cohort__name", "cohort__slug", "booking_url")
    list_select_related = ("cohort",)


@admin.register(Invitation)
class InvitationAdmin(OrganizationScopedAdmin):
    org_lookup = "application__cohort__organization"

    list_display = ("id", "created_at", "application", "round", "kind", "reminder_number", "is_resend",
                    "source", "sent_by", "state", "sent_at")
    list_filter = ("state", "kind", "source", "round")
    search_fields = ("to_email", "subject", "application__public_id", "application__applicant_name")
    list_select_related = ("application", "sent_by")
    raw_id_fields = ("application", "sent_by")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False  # invitations are sent from the application page, the tab or send_invitations


@admin.register(ApplicantToken)
class ApplicantTokenAdmin(OrganizationScopedAdmin):
    """Applicants' page links: who has one, until when, last opened; revoke from here too."""

    org_lookup = "application__cohort__organization"

    list_display = ("application", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("application__applicant_name", "application__contact_email", "application__public_id")
    list_select_related = ("application",)
    # The key is the applicant's password: never shown, never typed in.
    exclude = ("key",)
    readonly_fields = ("application", "created_at", "expires_at", "last_used_at", "revoked_at", "revoked_by")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # issued by invitations and the application page (scheduling.applicant.token_for)

    @admin.action(description="Revoke the selected links (the next invitation carries a new one)")
    def revoke(self, request, queryset):
        from .applicant import revoke_tokens

        done = sum(revoke_tokens(token.application, user=request.user)
                   for token in queryset.filter(revoked_at__isnull=True).select_related("application"))
        self.message_user(request, f"Revoked {done} link(s).", messages.SUCCESS)


@admin.register(ScheduleChange)
class ScheduleChangeAdmin(OrganizationScopedAdmin):
    """The schedule's history lines (offline, the applicant's word, links): read-only."""

    org_lookup = "application__cohort__organization"

    list_display = ("created_at", "application", "action", "cause", "detail")
    list_filter = ("action",)
    search_fields = ("application__applicant_name", "application__public_id", "detail")
    list_select_related = ("application", "user")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


register_history(Booking)
register_history(InterviewRound)


class SyncDriftInline(ScopedInline):
    model = SyncDrift
    fields = ("booking_uid", "application", "sentence")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(OrganizationScopedAdmin):
    """Cal.com API syncs, read-only: what each fetched and the drift it fixed (issue 10)."""

    list_display = ("id", "cohort", "trigger", "status", "started_at", "finished_at", "bookings_checked",
                    "changes_made", "requested_by")
    list_filter = ("status", "trigger", "cohort")
    list_select_related = ("cohort", "requested_by")
    date_hierarchy = "started_at"
    search_fields = ("error", "drift__sentence", "drift__booking_uid")
    readonly_fields = ("cohort", "trigger", "requested_by", "status", "started_at", "finished_at", "window_start",
                       "pages_fetched", "bookings_checked", "changes_made", "error")
    inlines = [SyncDriftInline]

    def has_add_permission(self, request):
        return False
