"""Prompts as JSONL (`{"text" or "prompt", "source", "source_id" or "id"}`) or CSV (a header row with
a `text` (or `prompt`) column and optional `source` and `source_id` (or `id`) columns).

A prompt's identity within a study is its text (Prompt.text_hash); a non-empty (source,
source_id) must also be unique within a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.db import transaction

from personalization.importers.common import (
    UNREADABLE,
    DuplicateIndex,
    ErrorCollector,
    ErrorSink,
    ImportReport,
    LineError,
    Progress,
    Source,
    as_text,
    batched,
    changed_during_import,
    csv_rows,
    jsonl_records,
    lock_study_for_import,
    max_length,
    report_progress,
    sniff_is_json,
)
from personalization.models import Prompt, Study, text_sha256

FORMATS = ("auto", "jsonl", "csv")
TEXT_KEYS = ("text", "prompt")
SOURCE_ID_KEYS = ("source_id", "id")
SOURCE_MAX = max_length(Prompt, "source")
SOURCE_ID_MAX = max_length(Prompt, "source_id")


@dataclass
class ParsedPrompt:
    line: int
    text: str
    text_hash: str
    source: str
    source_id: str


def _first_present(record: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if key in record and record[key] is not None:
            return key, record[key]
    return keys[0], None


def parse_prompt(record: dict[str, Any], *, line: int, source: str) -> ParsedPrompt:
    """Checks one JSONL object or CSV row; raises LineError naming the field."""
    key, value = _first_present(record, TEXT_KEYS)
    if value is None:
        raise LineError("text", "missing required field ('text' or 'prompt')")
    text = as_text(value, key)
    _, source_value = _first_present(record, ("source",))
    line_source = as_text(source_value, "source", max_length=SOURCE_MAX, allow_empty=True) if source_value else ""
    id_key, id_value = _first_present(record, SOURCE_ID_KEYS)
    source_id = (
        as_text(id_value, id_key, max_length=SOURCE_ID_MAX, allow_empty=True, is_id=True)
        if id_value is not None
        else ""
    )
    return ParsedPrompt(
        line=line, text=text, text_hash=text_sha256(text), source=line_source or source, source_id=source_id.strip()
    )


def resolve_format(src: Source, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = src.filename.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return "jsonl" if sniff_is_json(src.head()) else "csv"


def _records(
    handle: BinaryIO, fmt: str, errors: ErrorSink | None
) -> Iterator[tuple[int, dict[str, Any] | LineError | None]]:
    """Yields (line, record) in a shape parse_prompt reads, whatever the file format."""
    if fmt == "jsonl":
        yield from jsonl_records(handle, errors)
        return
    header: list[str] | None = None
    for line, cells in csv_rows(handle, errors):
        if cells is None:
            yield line, None
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            if not set(TEXT_KEYS) & set(header):
                yield line, LineError("text", f"the CSV header has no 'text' column (found: {', '.join(header)})")
                return
            continue
        if len(cells) != len(header):
            yield line, LineError("(csv)", f"expected {len(header)} columns as in the header, got {len(cells)}")
            continue
        yield line, {key: value for key, value in zip(header, cells, strict=True) if value != ""}


def _parsed(
    handle: BinaryIO, fmt: str, source: str, errors: ErrorSink | None
) -> Iterator[tuple[int, ParsedPrompt | LineError | None]]:
    for line, record in _records(handle, fmt, errors):
        if record is None or isinstance(record, LineError):
            yield line, record
            continue
        try:
            yield line, parse_prompt(record, line=line, source=source)
        except LineError as exc:
            yield line, exc


def _validate(src: Source, fmt: str, source: str) -> int:
    errors = ErrorCollector(src.filename)
    texts = DuplicateIndex()
    ids = DuplicateIndex()
    records = 0
    with src.open() as handle:
        for line, result in _parsed(handle, fmt, source, errors):
            records += 1
            if isinstance(result, LineError):
                errors.add(line, result.field_name, result.message)
            elif result is not None:
                first = texts.seen(line, result.text_hash)
                if first is not None:
                    errors.add(line, "text", f"duplicate prompt: the same text is on line {first}")
                elif result.source_id and (first := ids.seen(line, result.source, result.source_id)) is not None:
                    errors.add(line, "source_id", f"duplicate source_id {result.source_id!r} (first on line {first})")
    errors.check_not_empty(records)
    errors.raise_if_any()
    return records


def prompts_import(
    *,
    study: Study,
    path: Path | None = None,
    stream: BinaryIO | None = None,
    filename: str = "",
    fmt: str = "auto",
    source: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """Validates the whole file, then stores its prompts in one transaction.

    Idempotent: a prompt whose text the study already has is skipped and counted as existing.
    `source` tags prompts whose line names none. A stream must be seekable (it is read twice).
    Raises ImportValidationError, storing nothing.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown prompts format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    if len(source) > SOURCE_MAX:
        raise ValueError(f"source is longer than {SOURCE_MAX} characters.")
    src = Source.of(path=path, stream=stream, filename=filename)
    fmt = resolve_format(src, fmt)
    records = _validate(src, fmt, source)

    report = ImportReport(kind="prompts", lines=records, created={"prompts": 0}, existing={"prompts": 0})
    done = 0
    with transaction.atomic(), src.open() as handle:
        lock_study_for_import(study)
        for batch in batched(_parsed(handle, fmt, source, None)):
            prompts: list[ParsedPrompt] = []
            for line, result in batch:
                if not isinstance(result, ParsedPrompt):
                    raise changed_during_import(src.filename, line, result or LineError("(record)", UNREADABLE))
                prompts.append(result)
            present = set(
                Prompt.objects.filter(study=study, text_hash__in=[p.text_hash for p in prompts]).values_list(
                    "text_hash", flat=True
                )
            )
            new = [
                Prompt(study=study, text=p.text, text_hash=p.text_hash, source=p.source, source_id=p.source_id)
                for p in prompts
                if p.text_hash not in present
            ]
            Prompt.objects.bulk_create(new)
            report.created["prompts"] += len(new)
            report.existing["prompts"] += len(prompts) - len(new)
            done += len(batch)
            report_progress(progress, done)
    return report
