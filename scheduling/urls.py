from django.urls import path

from . import calendar_views, views

app_name = "scheduling"

urlpatterns = [
    # Both forms: Cal.com counts a redirect as a failed delivery (PROTOCOL.md §5).
    path("webhooks/calcom/<str:webhook_key>/", views.calcom_webhook, name="calcom_webhook"),
    path("webhooks/calcom/<str:webhook_key>", views.calcom_webhook, name="calcom_webhook_noslash"),
    path("cohorts/<slug:slug>/interviews/", calendar_views.interview_calendar, name="interviews"),
    path("cohorts/<slug:slug>/interviews/feed/<str:token>.ics", calendar_views.interview_feed,
         name="interview_feed"),
    path("cohorts/<slug:slug>/interviews/feed/rotate/", calendar_views.interview_feed_rotate,
         name="interview_feed_rotate"),
]
