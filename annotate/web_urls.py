"""Annotator screens and the researcher dashboard."""

from __future__ import annotations

from django.urls import path

from annotate import screens

urlpatterns = [
    path("studies/new/", screens.study_create, name="study-create"),
    path("studies/<int:study_id>/", screens.study_detail, name="study-detail"),
    path("studies/<int:study_id>/stages/<int:stage>/work/", screens.annotate_work, name="annotate-work"),
    path("studies/<int:study_id>/mine/", screens.my_judgments, name="my-judgments"),
    path("studies/<int:study_id>/dashboard/", screens.study_dashboard, name="study-dashboard"),
    path("studies/<int:study_id>/design/", screens.study_design, name="study-design"),
    path("studies/<int:study_id>/stages/<int:stage>/items/", screens.study_items, name="study-items"),
    path("items/<int:item_id>/", screens.item_detail, name="item-detail"),
    path("assignments/<int:assignment_id>/edit/", screens.assignment_edit, name="assignment-edit"),
]
