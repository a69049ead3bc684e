"""Import API: a study owner uploads conversations, attributes or prompts.

The import runs in the request: validation streams the uploaded file (Django keeps uploads above
FILE_UPLOAD_MAX_MEMORY_SIZE in a temporary file, which is seekable, as the two passes need).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.importers import ImportValidationError
from personalization.importers.access import study_get_for_import
from personalization.importers.uploads import FORMATS_BY_KIND, KINDS, upload_import
from personalization.models import Subject


class ImportInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS)
    file = serializers.FileField()
    format = serializers.ChoiceField(
        choices=sorted({f for formats in FORMATS_BY_KIND.values() for f in formats}), default="auto"
    )
    # Declared fields are taken out of the class namespace by DRF, so this does not shadow Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=Subject._meta.get_field("source").max_length, required=False, allow_blank=True, default=""
    )
    is_synthetic = serializers.BooleanField(required=False, default=False)
    subject_key = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["format"] not in FORMATS_BY_KIND[attrs["kind"]]:
            allowed = ", ".join(FORMATS_BY_KIND[attrs["kind"]])
            raise serializers.ValidationError({"format": f"{attrs['kind']} imports accept: {allowed}."})
        return attrs


class ImportOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    lines = serializers.IntegerField()
    created = serializers.DictField(child=serializers.IntegerField())
    existing = serializers.DictField(child=serializers.IntegerField())


class ImportErrorsSerializer(serializers.Serializer):
    # As above: the declared field does not replace Serializer.errors at runtime.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text='Each "file:line: field: message".'
    )
    total = serializers.IntegerField(help_text="How many errors the file has; `errors` lists the first few.")


def _flat_errors(detail: dict[str, Any]) -> list[str]:
    return [f"{field}: {message}" for field, messages in detail.items() for message in messages]


class StudyImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="study_import",
        tags=["imports"],
        summary="Import conversations, attributes or prompts into a study you own",
        description=(
            "The whole file is validated first; if anything is wrong nothing is stored and the answer is 400 "
            "with the first errors as `file:line: field: message`. Re-importing a file stores nothing twice."
        ),
        request={"multipart/form-data": ImportInputSerializer},
        responses={
            201: ImportOutputSerializer,
            400: ImportErrorsSerializer,
            404: OpenApiResponse(description="No such study, or you do not own it"),
        },
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = study_get_for_import(user=request.user, study_id=study_id)
        data = ImportInputSerializer(data=request.data)
        if not data.is_valid():
            errors = _flat_errors(data.errors)
            return Response({"errors": errors, "total": len(errors)}, status=status.HTTP_400_BAD_REQUEST)
        values = data.validated_data
        try:
            report = upload_import(
                study=study,
                kind=values["kind"],
                upload=values["file"],
                fmt=values["format"],
                source=values["source"],
                is_synthetic=values["is_synthetic"],
                subject_key=values["subject_key"],
            )
        except ImportValidationError as exc:
            return Response({"errors": exc.errors, "total": exc.total}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportOutputSerializer(report).data, status=status.HTTP_201_CREATED)
