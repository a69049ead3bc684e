"""Personalization API (imports), mounted under /api/.

The views opt out of LoginRequiredMiddleware's redirect: DRF's IsAuthenticated default answers
401/403 itself, which token clients can act on; a redirect to an HTML login page they cannot.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from personalization import api

urlpatterns = [
    path(
        "studies/<int:study_id>/imports/",
        login_not_required(api.StudyImportApi.as_view()),
        name="api-study-import",
    ),
]
