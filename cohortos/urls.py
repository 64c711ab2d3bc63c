from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from applications import views as application_views

urlpatterns = [
    path("", include("scheduling.urls")),
    path("", include("applications.urls")),
    path("", include("orphans.urls")),
    path("", application_views.home, name="home"),
    # Django's auth URLs less the password reset: nothing links to it, and an open reset form
    # sends email to any address on demand (issue 14). An admin sets a forgotten password in
    # the Django admin, or with `manage.py changepassword <username>`.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("admin/", admin.site.urls),
]
