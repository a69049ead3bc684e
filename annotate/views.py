"""Pages of the project shell. Annotation screens live in annotate/screens.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.selectors import studies_for_user


def home(request: HttpRequest) -> HttpResponse:
    studies = studies_for_user(user=request.user)
    return render(request, "home.html", {"studies": studies})
