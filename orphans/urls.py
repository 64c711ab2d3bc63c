from django.urls import path

from . import views

app_name = "orphans"

urlpatterns = [
    path("cohorts/<slug:slug>/orphans/", views.orphan_list, name="list"),
]
