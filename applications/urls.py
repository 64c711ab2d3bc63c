from django.urls import path
from django.views.generic.base import RedirectView

app_name = "applications"

urlpatterns = []
