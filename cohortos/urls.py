from django.contrib import admin
from django.urls import include, path
from django.views.generic.base import RedirectView

urlpatterns = [
    path("", include("scheduling.urls")),
    path("", include("applications.urls")),
    path("", include("orphans.urls")),
    path("", RedirectView.as_view(url="/admin/"), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
