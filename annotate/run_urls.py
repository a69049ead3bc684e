"""Model run pages (start, cancel, resume, progress) and their API.

API views opt out of LoginRequiredMiddleware's redirect: DRF's IsAuthenticated answers 401/403
itself, which token clients can act on.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.http.response import HttpResponseBase
from django.urls import path

from annotate import run_api, run_views

app_name = "runs"


def _api(view: type[run_api.APIView]) -> Callable[..., HttpResponseBase]:
    return login_not_required(view.as_view())


urlpatterns = [
    path("studies/<int:study_id>/runs/", run_views.runs_list, name="list"),
    path("studies/<int:study_id>/runs/start/", run_views.run_start_view, name="start"),
    path("runs/<int:run_id>/", run_views.run_detail, name="detail"),
    path("runs/<int:run_id>/cancel/", run_views.run_cancel_view, name="cancel"),
    path("runs/<int:run_id>/resume/", run_views.run_resume_view, name="resume"),
    path("api/studies/<int:study_id>/runs/", _api(run_api.StudyRunsApi), name="api-study-runs"),
    path("api/runs/<int:run_id>/", _api(run_api.RunDetailApi), name="api-run"),
    path("api/runs/<int:run_id>/cancel/", _api(run_api.RunCancelApi), name="api-run-cancel"),
    path("api/runs/<int:run_id>/resume/", _api(run_api.RunResumeApi), name="api-run-resume"),
    path("api/runs/<int:run_id>/progress/", _api(run_api.RunProgressApi), name="api-run-progress"),
]
