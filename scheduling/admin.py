from django.contrib import admin, messages
from django.utils.html import format_html

from .models import Booking, WebhookDelivery
from .ingest import process_delivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "cohort", "provider", "trigger_event", "booking_uid", "outcome",
                    "application", "attempts", "redeliveries")
    list_filter = ("provider", "outcome", "trigger_event", "cohort")
    search_fields = ("booking_uid", "sha256", "logical_key", "detail", "error")
    list_select_related = ("cohort", "application")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    exclude = ("body",)
    readonly_fields = ("cohort", "provider", "received_at", "sha256", "trigger_event", "booking_uid",
                       "event_created_at", "logical_key", "outcome", "detail", "error", "attempts",
                       "redeliveries", "processed_at", "application", "duplicate_of", "pretty_json")

    @admin.display(description="Body")
    def pretty_json(self, obj):
        return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>',
                           obj.pretty_body())

    def has_add_permission(self, request):
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
class BookingAdmin(admin.ModelAdmin):
    list_display = ("uid", "attendee_key", "kind", "cohort", "application", "state", "start", "email",
                    "organizer_name", "no_show", "reschedule_uid", "request_reschedule", "last_event_at")
    list_filter = ("kind", "state", "request_reschedule", "no_show", "cohort")
    search_fields = ("uid", "attendee_key", "ical_uid", "reschedule_uid", "rescheduled_to_uid", "email",
                     "name", "organizer_email", "organizer_name")
    list_select_related = ("cohort", "application")
    raw_id_fields = ("application",)
    readonly_fields = ("last_event_at", "last_sequence", "details_at", "no_show_at", "created_at",
                       "updated_at")
