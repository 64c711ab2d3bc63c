from django.urls import path

from . import sync_views, views

app_name = "scheduling"

urlpatterns = [
    # Both forms: Cal.com counts a redirect as a failed delivery (PROTOCOL.md §5).
    path("webhooks/calcom/<str:webhook_key>/", views.calcom_webhook, name="calcom_webhook"),
    path("webhooks/calcom/<str:webhook_key>", views.calcom_webhook, name="calcom_webhook_noslash"),
    path("cohorts/<slug:slug>/sync/", sync_views.sync_health, name="sync_health"),
    path("cohorts/<slug:slug>/sync/api-key/", sync_views.calcom_api_key, name="calcom_api_key"),
    path("cohorts/<slug:slug>/sync/now/", sync_views.sync_now, name="sync_now"),
    path("cohorts/<slug:slug>/sync/runs/<int:pk>/", sync_views.sync_progress, name="sync_progress"),
]
