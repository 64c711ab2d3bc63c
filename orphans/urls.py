from django.urls import path

from . import views

app_name = "orphans"

urlpatterns = [
    path("cohorts/<slug:slug>/orphans/", views.orphan_list, name="list"),
    path("cohorts/<slug:slug>/orphans/<int:pk>/candidates/", views.orphan_candidates, name="candidates"),
    path("cohorts/<slug:slug>/orphans/<int:pk>/match/", views.orphan_match, name="match"),
    path("cohorts/<slug:slug>/orphans/<int:pk>/dismiss/", views.orphan_dismiss, name="dismiss"),
    path("cohorts/<slug:slug>/orphans/<int:pk>/restore/", views.orphan_restore, name="restore"),
    path("cohorts/<slug:slug>/orphans/<int:pk>/unmatch/", views.orphan_unmatch, name="unmatch"),
]
