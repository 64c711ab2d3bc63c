from django.contrib import admin
from django.urls import include, path

from applications import views as application_views

urlpatterns = [
    path("", include("scheduling.urls")),
    path("", include("applications.urls")),
    path("", include("orphans.urls")),
    path("", application_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
