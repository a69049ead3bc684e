"""Model run API: start, list, inspect, cancel, resume and watch runs (study owners only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import study_get_for_owner
from annotate.runs import run_cancel, run_get_for_owner, run_progress, run_resume, run_start
from personalization.models import ModelRun
from personalization.selectors import model_runs_of_study

T = TypeVar("T")
TAG = ["model runs"]


def _service(call: Callable[[], T]) -> T:
    """Runs a service; its ValidationError becomes a 400 naming the field."""
    try:
        return call()
    except DjangoValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages}
        raise ValidationError(detail) from error


class RunStartInputSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=ModelRun.Step.choices)
    model_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    params = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, default=0, min_value=0)


class RunResumeInputSerializer(serializers.Serializer):
    retry_failed = serializers.BooleanField(required=False, default=False)


class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelRun
        fields = [
            "id",
            "study",
            "step",
            "status",
            "model_name",
            "model_id",
            "revision",
            "backend",
            "params",
            "template_name",
            "template_hash",
            "seed",
            "total_count",
            "done_count",
            "failed_count",
            "generated_tokens",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunErrorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    input_key = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    updated_at = serializers.DateTimeField()


class RunProgressOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    step = serializers.CharField()
    status = serializers.CharField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    total = serializers.IntegerField()
    remaining = serializers.IntegerField()
    generated_tokens = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField()
    items_per_second = serializers.FloatField()
    tokens_per_second = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    latest_errors = RunErrorSerializer(many=True)


class StudyRunsApi(APIView):
    @extend_schema(
        operation_id="study_runs_list",
        tags=TAG,
        summary="The study's runs, newest first",
        responses={200: RunOutputSerializer(many=True)},
    )
    def get(self, request: Request, study_id: int) -> Response:
        study = study_get_for_owner(user=request.user, study_id=study_id)
        runs = model_runs_of_study(study=study)[:200]
        return Response(RunOutputSerializer(runs, many=True).data)

    @extend_schema(
        operation_id="study_runs_start",
        tags=TAG,
        summary="Start a run of one pipeline step",
        request=RunStartInputSerializer,
        responses={201: RunOutputSerializer},
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = study_get_for_owner(user=request.user, study_id=study_id)
        data = RunStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = _service(
            lambda: run_start(
                study=study,
                step=values["step"],
                user=request.user,
                model_name=values.get("model_name") or None,
                params=values["params"],
                seed=values["seed"],
            )
        )
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    @extend_schema(operation_id="run_detail", tags=TAG, summary="One run", responses={200: RunOutputSerializer})
    def get(self, request: Request, run_id: int) -> Response:
        run = run_get_for_owner(user=request.user, run_id=run_id)
        return Response(RunOutputSerializer(run).data)


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="run_cancel",
        tags=TAG,
        summary="Stop a run before its next batch",
        request=None,
        responses={200: RunOutputSerializer},
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = run_get_for_owner(user=request.user, run_id=run_id)
        run = run_cancel(run=run, user=request.user)
        return Response(RunOutputSerializer(run).data)


class RunResumeApi(APIView):
    @extend_schema(
        operation_id="run_resume",
        tags=TAG,
        summary="Continue a run: only missing work is done",
        request=RunResumeInputSerializer,
        responses={200: RunOutputSerializer},
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = run_get_for_owner(user=request.user, run_id=run_id)
        data = RunResumeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_resume(run=run, user=request.user, retry_failed=data.validated_data["retry_failed"])
        return Response(RunOutputSerializer(run).data)


class RunProgressApi(APIView):
    @extend_schema(
        operation_id="run_progress",
        tags=TAG,
        summary="Live progress: counts, throughput, ETA, errors",
        responses={200: RunProgressOutputSerializer},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = run_get_for_owner(user=request.user, run_id=run_id)
        return Response(RunProgressOutputSerializer(run_progress(run=run)).data)
