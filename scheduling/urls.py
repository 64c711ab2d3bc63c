from django.urls import path

from . import applicant_views, offline_views, views

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
]
