"""One entry point for uploaded files (API and admin): picks the importer for the kind."""

from __future__ import annotations

from typing import BinaryIO, cast

from django.core.files.uploadedfile import UploadedFile

from personalization.importers.attributes import attributes_import
from personalization.importers.common import ImportReport
from personalization.importers.conversations import FORMATS as CONVERSATION_FORMATS
from personalization.importers.conversations import conversations_import
from personalization.importers.prompts import FORMATS as PROMPT_FORMATS
from personalization.importers.prompts import prompts_import
from personalization.models import Study

KINDS = ("conversations", "attributes", "prompts")
FORMATS_BY_KIND: dict[str, tuple[str, ...]] = {
    "conversations": CONVERSATION_FORMATS,
    "attributes": ("auto",),
    "prompts": PROMPT_FORMATS,
}


def upload_import(
    *,
    study: Study,
    kind: str,
    upload: UploadedFile,
    fmt: str = "auto",
    source: str = "",
    is_synthetic: bool = False,
    subject_key: str | None = None,
) -> ImportReport:
    """Imports an uploaded file of the given kind; raises ImportValidationError, storing nothing.

    Reads the upload's underlying file (a temporary file or an in-memory buffer, both seekable),
    so lines are split on newlines only, exactly as for a file on disk.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown import kind {kind!r}; expected one of {', '.join(KINDS)}.")
    stream = cast(BinaryIO, upload.file)
    name = upload.name or "upload"
    if kind == "conversations":
        return conversations_import(
            study=study,
            stream=stream,
            filename=name,
            fmt=fmt,
            source=source,
            is_synthetic=is_synthetic,
            subject_key=subject_key or None,
        )
    if kind == "attributes":
        return attributes_import(study=study, stream=stream, filename=name)
    return prompts_import(study=study, stream=stream, filename=name, fmt=fmt, source=source)
