from django.urls import path

from . import views

app_name = "scheduling"

urlpatterns = [
    # Both forms: Cal.com counts a redirect as a failed delivery (PROTOCOL.md §5).
    path("webhooks/calcom/<str:webhook_key>/", views.calcom_webhook, name="calcom_webhook"),
    path("webhooks/calcom/<str:webhook_key>", views.calcom_webhook, name="calcom_webhook_noslash"),
    path("webhooks/calendly/<str:webhook_key>/", views.calendly_webhook, name="calendly_webhook"),
    path("webhooks/calendly/<str:webhook_key>", views.calendly_webhook, name="calendly_webhook_noslash"),
    path("webhooks/cronofy/<str:webhook_key>/", views.cronofy_webhook, name="cronofy_webhook"),
    path("webhooks/cronofy/<str:webhook_key>", views.cronofy_webhook, name="cronofy_webhook_noslash"),
]
