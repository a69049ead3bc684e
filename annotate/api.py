"""The annotation API: thin views that parse, check access, call a service and serialize."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate import serializers as s
from annotate.access import assignment_get_for_annotator, study_get_for_annotator, study_get_for_member
from annotate.models import Assignment
from annotate.selectors import assignment_payload, judgments_of_annotator, study_progress_cached
from annotate.services import (
    assignment_heartbeat,
    assignment_next,
    assignment_save_draft,
    assignment_skip,
    assignment_submit,
    stage_validate,
)
from personalization.models import Study

T = TypeVar("T")
TAG = ["annotation"]


def _service(call: Callable[[], T]) -> T:
    """Runs a service; its ValidationError becomes a 400 with the service's message."""
    try:
        return call()
    except DjangoValidationError as error:
        raise ValidationError({"detail": error.messages}) from error


def _next_payload(*, study: Study, stage: int, user: User) -> dict | None:
    assignment = _service(lambda: assignment_next(study=study, stage=stage, annotator=user))
    return assignment_payload(assignment=assignment) if assignment is not None else None


def _next_after(assignment: Assignment, *, user: User) -> dict | None:
    """The item to show after a submit or skip: only annotators are given more work."""
    if not getattr(assignment, "by_annotator", False):
        return None
    return _next_payload(study=assignment.study, stage=assignment.stage, user=user)


class AssignmentNextApi(APIView):
    @extend_schema(
        operation_id="assignment_next",
        tags=TAG,
        summary="Your current item of a stage, or a new one under a lease",
        responses={200: s.AssignmentPayloadSerializer, 204: OpenApiResponse(description="No work left for you")},
    )
    def get(self, request: Request, study_id: int, stage: int) -> Response:
        study = study_get_for_annotator(user=request.user, study_id=study_id)
        stage = _service(lambda: stage_validate(stage=stage))
        payload = _next_payload(study=study, stage=stage, user=cast(User, request.user))
        if payload is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.AssignmentPayloadSerializer(payload).data)

    @extend_schema(
        operation_id="assignment_next_post",
        tags=TAG,
        summary="Same as GET (for clients that only POST state changes)",
        request=None,
        responses={200: s.AssignmentPayloadSerializer, 204: OpenApiResponse(description="No work left for you")},
    )
    def post(self, request: Request, study_id: int, stage: int) -> Response:
        return self.get(request, study_id, stage)


class StageProgressApi(APIView):
    @extend_schema(
        operation_id="stage_progress",
        tags=TAG,
        summary="Progress of a stage: the study's items (cached a few seconds) and your own work",
        responses={200: s.ProgressSerializer},
    )
    def get(self, request: Request, study_id: int, stage: int) -> Response:
        study = study_get_for_member(user=request.user, study_id=study_id)
        stage = _service(lambda: stage_validate(stage=stage))
        progress = study_progress_cached(study=study, stage=stage, annotator=cast(User, request.user))
        return Response(s.ProgressSerializer(progress).data)


class AssignmentDetailApi(APIView):
    @extend_schema(
        operation_id="assignment_detail",
        tags=TAG,
        summary="One of your assignments (also submitted ones, for editing)",
        responses={200: s.AssignmentPayloadSerializer},
    )
    def get(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
        return Response(s.AssignmentPayloadSerializer(assignment_payload(assignment=assignment)).data)


class AssignmentSubmitApi(APIView):
    @extend_schema(
        operation_id="assignment_submit",
        tags=TAG,
        summary="Submit (or change) your answers; the next item comes back in the same response",
        request=s.SubmitInputSerializer,
        responses={200: s.SubmitOutputSerializer},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
        data = s.SubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _service(lambda: assignment_submit(assignment=assignment, **data.validated_data))
        payload = _next_after(assignment, user=cast(User, request.user))
        return Response(s.SubmitOutputSerializer({"ok": True, "next": payload}).data)


class AssignmentSkipApi(APIView):
    @extend_schema(
        operation_id="assignment_skip",
        tags=TAG,
        summary="Give the item back without judging it; you will not be offered it again",
        request=s.SkipInputSerializer,
        responses={200: s.SkipOutputSerializer},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
        data = s.SkipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _service(lambda: assignment_skip(assignment=assignment, reason=data.validated_data["reason"]))
        payload = _next_after(assignment, user=cast(User, request.user))
        return Response(s.SkipOutputSerializer({"next": payload}).data)


class AssignmentHeartbeatApi(APIView):
    @extend_schema(
        operation_id="assignment_heartbeat",
        tags=TAG,
        summary="Keep your lease alive while the page is open",
        request=None,
        responses={200: s.HeartbeatOutputSerializer},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
        assignment = _service(lambda: assignment_heartbeat(assignment=assignment))
        return Response(s.HeartbeatOutputSerializer({"lease_expires_at": assignment.lease_expires_at}).data)


class AssignmentDraftApi(APIView):
    @extend_schema(
        operation_id="assignment_draft",
        tags=TAG,
        summary="Autosave the page's unsaved answers",
        request=s.DraftInputSerializer,
        responses={204: OpenApiResponse(description="Saved")},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
        data = s.DraftInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _service(lambda: assignment_save_draft(assignment=assignment, draft=data.validated_data["draft"]))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyJudgmentsApi(APIView):
    @extend_schema(
        operation_id="my_judgments",
        tags=TAG,
        summary="Your submitted items in a study, newest first (paginated with limit/offset)",
        responses={200: s.MyJudgmentSerializer(many=True)},
    )
    def get(self, request: Request, study_id: int) -> Response:
        study = study_get_for_member(user=request.user, study_id=study_id)
        paginator = LimitOffsetPagination()
        mine = judgments_of_annotator(study=study, annotator=cast(User, request.user))
        page: list[Assignment] = paginator.paginate_queryset(mine, request, view=self) or []
        return paginator.get_paginated_response(s.MyJudgmentSerializer(page, many=True).data)
