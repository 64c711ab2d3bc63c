from django.urls import path

from . import views

app_name = "applications"

urlpatterns = [
    path("cohorts/<slug:slug>/applications/", views.application_list, name="list"),
    path("cohorts/<slug:slug>/applications/orphan-badge/", views.orphan_badge, name="orphan_badge"),
    path("cohorts/<slug:slug>/applications/<int:pk>/", views.application_detail, name="detail"),
    path(
        "cohorts/<slug:slug>/applications/<int:pk>/status/",
        views.application_change_status, name="change_status",
    ),
    path(
        "cohorts/<slug:slug>/applications/<int:pk>/reopen/",
        views.application_reopen, name="reopen",
    ),
    path("settings/", views.user_settings, name="settings"),
]
