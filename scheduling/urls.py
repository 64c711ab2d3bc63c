from django.urls import path

from . import views

app_name = "scheduling"

urlpatterns = [
    # Both forms: Cal.com counts a redirect as a failed delivery (PROTOCOL.md §5).
    path("webhooks/calcom/<str:webhook_key>/", views.calcom_webhook, name="calcom_webhook"),
    path("webhooks/calcom/<str:webhook_key>", views.calcom_webhook, name="calcom_webhook_noslash"),
]
