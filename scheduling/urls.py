from django.urls import path, re_path

from . import applicant_views, calendar_views, invitation_views, offline_views, settings_views, sync_views, views

app_name = "scheduling"

APPLICATION = "cohorts/<slug:slug>/applications/<int:pk>/"

urlpatterns = [
    # Both forms: Cal.com counts a redirect as a failed delivery (PROTOCOL.md §5).
    path("webhooks/calcom/<str:webhook_key>/", views.calcom_webhook, name="calcom_webhook"),
    path("webhooks/calcom/<str:webhook_key>", views.calcom_webhook, name="calcom_webhook_noslash"),
    path("webhooks/calendly/<str:webhook_key>/", views.calendly_webhook, name="calendly_webhook"),
    path("webhooks/calendly/<str:webhook_key>", views.calendly_webhook, name="calendly_webhook_noslash"),
    path("webhooks/cronofy/<str:webhook_key>/", views.cronofy_webhook, name="cronofy_webhook"),
    path("webhooks/cronofy/<str:webhook_key>", views.cronofy_webhook, name="cronofy_webhook_noslash"),
    path("cohorts/<slug:slug>/interviews/", calendar_views.interview_calendar, name="interviews"),
    path("cohorts/<slug:slug>/interviews/feed/<str:token>.ics", calendar_views.interview_feed,
         name="interview_feed"),
    path("cohorts/<slug:slug>/interviews/feed/rotate/", calendar_views.interview_feed_rotate,
         name="interview_feed_rotate"),
    path("cohorts/<slug:slug>/sync/", sync_views.sync_health, name="sync_health"),
    path("cohorts/<slug:slug>/sync/api-key/", sync_views.calcom_api_key, name="calcom_api_key"),
    path("cohorts/<slug:slug>/sync/now/", sync_views.sync_now, name="sync_now"),
    path("cohorts/<slug:slug>/sync/runs/<int:pk>/", sync_views.sync_progress, name="sync_progress"),
    # The applicant's own page: the token is the only credential (scheduling/applicant.py).
    path("i/<str:token>/", applicant_views.applicant_page, name="applicant_page"),
    path("i/<str:token>/booked/", applicant_views.applicant_booked, name="applicant_booked"),
    # Admins, on one application's schedule.
    path(APPLICATION + "offline/", offline_views.offline_schedule, name="offline_schedule"),
    path(APPLICATION + "offline/edit/", offline_views.offline_edit, name="offline_edit"),
    path(APPLICATION + "offline/clear/", offline_views.offline_clear, name="offline_clear"),
    path(APPLICATION + "applicant-booking/confirm/", offline_views.applicant_confirm,
         name="applicant_confirm"),
    path(APPLICATION + "applicant-link/", offline_views.applicant_link_issue, name="applicant_link_issue"),
    path(APPLICATION + "applicant-link/revoke/", offline_views.applicant_link_revoke,
         name="applicant_link_revoke"),
    path("cohorts/<slug:slug>/settings/", settings_views.cohort_settings, name="settings"),
    # A round is 1 or 2, not an object id: spelt out, so no other number reaches the views.
    re_path(r"^cohorts/(?P<slug>[-a-zA-Z0-9_]+)/settings/rounds/(?P<number>1|2)/$", settings_views.round_save,
            name="round_save"),
    re_path(r"^cohorts/(?P<slug>[-a-zA-Z0-9_]+)/settings/rounds/(?P<number>1|2)/preview/$",
            settings_views.round_preview, name="round_preview"),
    re_path(r"^cohorts/(?P<slug>[-a-zA-Z0-9_]+)/settings/rounds/(?P<number>1|2)/remove/$",
            settings_views.round_delete, name="round_delete"),
    path("cohorts/<slug:slug>/settings/rotate-secret/", settings_views.rotate_secret, name="rotate_secret"),
    path("cohorts/<slug:slug>/settings/contact/", settings_views.applicant_contact, name="applicant_contact"),
    path("cohorts/<slug:slug>/settings/providers/", settings_views.provider_secrets, name="provider_secrets"),
    path("cohorts/<slug:slug>/applications/<int:pk>/invite/", invitation_views.invite_application,
         name="invite"),
    path("cohorts/<slug:slug>/applications/invite/", invitation_views.invite_selected, name="invite_selected"),
]
