"""Annotation API (next item, submit, skip, stage progress, my judgments).

The views opt out of LoginRequiredMiddleware's redirect: DRF's IsAuthenticated default answers
401/403 itself, which token clients can act on; a redirect to an HTML login page they cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.http.response import HttpResponseBase
from django.urls import path

from annotate import api


def _api(view: type[api.APIView]) -> Callable[..., HttpResponseBase]:
    return login_not_required(view.as_view())


urlpatterns = [
    path("studies/<int:study_id>/stages/<int:stage>/next/", _api(api.AssignmentNextApi), name="api-assignment-next"),
    path("studies/<int:study_id>/stages/<int:stage>/progress/", _api(api.StageProgressApi), name="api-stage-progress"),
    path("studies/<int:study_id>/my-judgments/", _api(api.MyJudgmentsApi), name="api-my-judgments"),
    path("assignments/<int:assignment_id>/", _api(api.AssignmentDetailApi), name="api-assignment"),
    path("assignments/<int:assignment_id>/submit/", _api(api.AssignmentSubmitApi), name="api-assignment-submit"),
    path("assignments/<int:assignment_id>/skip/", _api(api.AssignmentSkipApi), name="api-assignment-skip"),
    path(
        "assignments/<int:assignment_id>/heartbeat/", _api(api.AssignmentHeartbeatApi), name="api-assignment-heartbeat"
    ),
    path("assignments/<int:assignment_id>/draft/", _api(api.AssignmentDraftApi), name="api-assignment-draft"),
]
