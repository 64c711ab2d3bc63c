from django.contrib import admin, messages

from scheduling.status import InvalidTransition, Status

from .models import (
    Application, ApplicationEmail, Cohort, Membership, Organization, StatusChange, UserSettings,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name")
    raw_id_fields = ("user",)


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "organization", "reply_to_email", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "slug")
    readonly_fields = ("webhook_key", "webhook_secret", "webhook_url", "calendly_webhook_url",
                       "cronofy_webhook_url")
    actions = ["rotate_secret", "rotate_key"]

    @admin.display(description="Webhook URL (Cal.com)")
    def webhook_url(self, obj):
        return obj.webhook_path() if obj.pk else "-"

    @admin.display(description="Webhook URL (Calendly)")
    def calendly_webhook_url(self, obj):
        return obj.webhook_path("calendly") if obj.pk else "-"

    @admin.display(description="Webhook URL (Cronofy)")
    def cronofy_webhook_url(self, obj):
        return obj.webhook_path("cronofy") if obj.pk else "-"

    @admin.action(description="Rotate the webhook signing secret")
    def rotate_secret(self, request, queryset):
        for cohort in queryset:
            cohort.rotate_webhook_secret()
        self.message_user(request, "New secrets set: paste them into Cal.com's webhook form.")

    @admin.action(description="Rotate the webhook URL key")
    def rotate_key(self, request, queryset):
        for cohort in queryset:
            cohort.rotate_webhook_key()
        self.message_user(request, "New webhook URLs set: update them in Cal.com.")


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    fields = ("created_at", "old_status", "new_status", "delivery", "user", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ApplicationEmailInline(admin.TabularInline):
    model = ApplicationEmail
    extra = 0


def _move_action(target):
    def action(modeladmin, request, queryset):
        moved, refused = 0, []
        for application in queryset:
            try:
                application.move_to(target, user=request.user, note=f"Changed by {request.user} in admin")
                moved += 1
            except InvalidTransition as exc:
                refused.append(f"{application.applicant_name}: {exc}")
        if moved:
            modeladmin.message_user(request, f"Moved {moved} to {target.label}.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)

    action.__name__ = f"move_to_{target.value}"
    action.short_description = f"Move status to “{target.label}”"
    return action


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("applicant_name", "contact_email", "cohort", "status", "current_stage",
                    "interview_start", "updated_at")
    list_filter = ("status", "current_stage", "cohort", "reschedule_requested")
    search_fields = ("applicant_name", "contact_email", "public_id", "interview_booking_uid")
    list_select_related = ("cohort",)
    readonly_fields = ("status", "current_stage", "updated_at", "created_at")
    inlines = [ApplicationEmailInline, StatusChangeInline]
    actions = [_move_action(status) for status in Status]


@admin.register(ApplicationEmail)
class ApplicationEmailAdmin(admin.ModelAdmin):
    list_display = ("email", "application", "created_at")
    search_fields = ("email", "application__applicant_name", "application__contact_email")
    raw_id_fields = ("application",)


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ("application", "old_status", "new_status", "created_at", "delivery", "user")
    list_filter = ("new_status",)
    search_fields = ("application__applicant_name", "application__contact_email", "note")
    list_select_related = ("application", "user")
    raw_id_fields = ("application", "delivery", "user")


@admin.register(UserSettings)
class UserSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
