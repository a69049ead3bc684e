"""Conversations JSONL, in WildChat form or OpenAI chat form, grouped into the study's subjects.

WildChat form, one conversation per line:
    {"conversation_hash": "...", "model": "...", "timestamp": "2023-04-09T00:02:53+00:00",
     "hashed_ip": "<subject>", "conversation": [{"role": "user", "content": "..."}, ...]}
OpenAI chat form:
    {"id": "<optional>", "user": "<subject>", "messages": [{"role": "user", "content": "..."}, ...]}

The subject key defaults to `hashed_ip` (WildChat) or the first of `user`, `subject`, `subject_id`
(OpenAI). A line may carry `source` and `is_synthetic` to override the import's defaults. The
conversation hash is the one given (`conversation_hash`, or `id` in OpenAI form), else the sha256
of the canonical JSON of the turns. Turns are stored with index 0, 1, ... in file order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from personalization.importers.common import (
    UNREADABLE,
    DuplicateIndex,
    ErrorCollector,
    ErrorSink,
    ImportReport,
    LineError,
    Progress,
    Source,
    as_bool,
    as_list,
    as_object,
    as_optional_text,
    as_text,
    batched,
    changed_during_import,
    insert_rows,
    json_type,
    jsonl_records,
    lock_study_for_import,
    max_length,
    report_progress,
    require,
)
from personalization.models import Conversation, Study, Subject, Turn

FORMATS = ("auto", "wildchat", "openai")
ROLES = ("system", "user", "assistant")
TURNS_KEY = {"wildchat": "conversation", "openai": "messages"}
DEFAULT_SUBJECT_KEYS = {"wildchat": ("hashed_ip",), "openai": ("user", "subject", "subject_id")}
# Subjects get this source tag when neither the import nor the line names one.
DEFAULT_SOURCE = {"wildchat": "wildchat", "openai": "openai"}
# Top-level keys read into columns; other scalar keys (language, country, ...) go to metadata.
KNOWN_KEYS = {"conversation_hash", "id", "model", "timestamp", "conversation", "messages", "source", "is_synthetic"}
MAX_METADATA_TEXT = 1000
# Keys per lookup query: 2 parameters each, under SQLite's 32766-parameter limit.
KEYS_PER_QUERY = 1000
EXTERNAL_ID_MAX = max_length(Subject, "external_id")
SOURCE_MAX = max_length(Subject, "source")
HASH_MAX = max_length(Conversation, "conversation_hash")
MODEL_MAX = max_length(Conversation, "model")


@dataclass
class ParsedConversation:
    line: int
    source: str
    external_id: str
    is_synthetic: bool
    conversation_hash: str
    model: str
    timestamp: datetime | None
    metadata: dict[str, Any]
    turns: list[tuple[str, str]] = field(default_factory=list)


def detect_format(record: dict[str, Any]) -> str | None:
    if "conversation" in record:
        return "wildchat"
    if "messages" in record:
        return "openai"
    return None


def turns_hash(turns: list[tuple[str, str]]) -> str:
    canonical = json.dumps(
        [{"content": content, "role": role} for role, content in turns],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _content(value: Any, name: str) -> str:
    """A message's text. OpenAI allows a list of parts; only text parts carry conversation text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            part = as_object(part, f"{name}[{i}]")
            if part.get("type") != "text":
                raise LineError(f"{name}[{i}].type", f"only text parts can be imported, got {part.get('type')!r}")
            texts.append(as_text(require(part, "text", f"{name}[{i}]."), f"{name}[{i}].text", allow_empty=True))
        return "\n".join(texts)
    raise LineError(name, f"expected a string, got {json_type(value)}")


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise LineError("timestamp", f"not an ISO 8601 date-time: {value[:40]!r}")
        # Naive times in datasets are UTC by convention (WildChat's are).
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    raise LineError("timestamp", f"expected an ISO 8601 string or epoch seconds, got {json_type(value)}")


def _subject_id(record: dict[str, Any], fmt: str, subject_key: str | None) -> str:
    keys = (subject_key,) if subject_key else DEFAULT_SUBJECT_KEYS[fmt]
    for key in keys:
        if key in record and record[key] is not None:
            return as_text(record[key], key, max_length=EXTERNAL_ID_MAX, is_id=True)
    which = "the key that names the subject" if len(keys) == 1 else f"one of {', '.join(keys)} names the subject"
    raise LineError(keys[0], f"missing required field: {which} (another key can be chosen with the subject key option)")


def parse_conversation(
    record: dict[str, Any], *, line: int, fmt: str, subject_key: str | None, source: str, is_synthetic: bool
) -> ParsedConversation:
    """Checks one record and returns what will be stored; raises LineError naming the field."""
    turns_key = TURNS_KEY[fmt]
    raw_turns = as_list(require(record, turns_key), turns_key)
    if not raw_turns:
        raise LineError(turns_key, "empty conversation: it has no turns")
    turns: list[tuple[str, str]] = []
    for i, raw in enumerate(raw_turns):
        name = f"{turns_key}[{i}]"
        message = as_object(raw, name)
        role = require(message, "role", f"{name}.")
        if not isinstance(role, str):
            raise LineError(f"{name}.role", f"expected a string, got {json_type(role)}")
        if role not in ROLES:
            raise LineError(f"{name}.role", f"unknown role {role[:30]!r} (expected system, user or assistant)")
        turns.append((role, _content(require(message, "content", f"{name}."), f"{name}.content")))

    external_id = _subject_id(record, fmt, subject_key)
    hash_key = "conversation_hash" if "conversation_hash" in record or fmt == "wildchat" else "id"
    given_hash = as_optional_text(record, hash_key, max_length=HASH_MAX, is_id=True)
    line_source = as_optional_text(record, "source", max_length=SOURCE_MAX)
    synthetic = as_bool(record["is_synthetic"], "is_synthetic") if "is_synthetic" in record else is_synthetic
    consumed = KNOWN_KEYS.union((subject_key,) if subject_key else DEFAULT_SUBJECT_KEYS[fmt])
    # Only short scalars: WildChat's per-line moderation blobs would dwarf the conversation itself.
    metadata = {
        key: value
        for key, value in record.items()
        if key not in consumed
        and (value is None or isinstance(value, bool | int | float | str))
        and not (isinstance(value, str) and len(value) > MAX_METADATA_TEXT)
    }
    return ParsedConversation(
        line=line,
        source=line_source or source or DEFAULT_SOURCE[fmt],
        external_id=external_id,
        is_synthetic=synthetic,
        conversation_hash=given_hash or turns_hash(turns),
        model=as_optional_text(record, "model", max_length=MODEL_MAX),
        timestamp=_timestamp(record.get("timestamp")),
        metadata=metadata,
        turns=turns,
    )


@dataclass
class _Options:
    fmt: str
    subject_key: str | None
    source: str
    is_synthetic: bool


def _parsed(
    handle: BinaryIO, options: _Options, errors: ErrorSink | None
) -> Iterator[tuple[int, ParsedConversation | LineError | None]]:
    """Yields each record's parse result; resolves an "auto" format from the first record that has one."""
    for line, record in jsonl_records(handle, errors):
        if record is None:
            yield line, None
            continue
        if options.fmt == "auto":
            detected = detect_format(record)
            if detected is None:
                yield (
                    line,
                    LineError(
                        "messages",
                        "missing required field ('messages' in OpenAI form, or 'conversation' in WildChat form)",
                    ),
                )
                continue
            options.fmt = detected
        try:
            yield (
                line,
                parse_conversation(
                    record,
                    line=line,
                    fmt=options.fmt,
                    subject_key=options.subject_key,
                    source=options.source,
                    is_synthetic=options.is_synthetic,
                ),
            )
        except LineError as exc:
            yield line, exc


def _validate(source: Source, options: _Options) -> int:
    """First pass: reads everything, stores nothing. Returns the record count or raises."""
    errors = ErrorCollector(source.filename)
    seen = DuplicateIndex()
    records = 0
    with source.open() as handle:
        for line, result in _parsed(handle, options, errors):
            records += 1
            if isinstance(result, LineError):
                errors.add(line, result.field_name, result.message)
            elif isinstance(result, ParsedConversation):
                first = seen.seen(line, result.source, result.external_id, result.conversation_hash)
                if first is not None:
                    errors.add(
                        line,
                        "conversation_hash",
                        f"duplicate conversation {result.conversation_hash[:64]!r} of subject "
                        f"{result.external_id[:64]!r} (first on line {first})",
                    )
    errors.check_not_empty(records)
    errors.raise_if_any()
    return records


def conversations_import(
    *,
    study: Study,
    path: Path | None = None,
    stream: BinaryIO | None = None,
    filename: str = "",
    fmt: str = "auto",
    source: str = "",
    is_synthetic: bool = False,
    subject_key: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validates the whole file, then stores its subjects, conversations and turns in one transaction.

    Idempotent: subjects (study, source, external_id) and conversations (subject, hash) already
    present are skipped and counted as existing; an existing subject keeps its is_synthetic flag.
    A stream must be seekable (it is read twice). Raises ImportValidationError, storing nothing.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown conversations format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    if len(source) > SOURCE_MAX:
        raise ValueError(f"source is longer than {SOURCE_MAX} characters.")
    src = Source.of(path=path, stream=stream, filename=filename)
    options = _Options(fmt=fmt, subject_key=subject_key or None, source=source, is_synthetic=is_synthetic)
    records = _validate(src, options)

    report = ImportReport(
        kind="conversations",
        lines=records,
        created={"subjects": 0, "conversations": 0, "turns": 0},
        existing={"subjects": 0, "conversations": 0},
    )
    # Ids of subjects this import created or found, so each subject is counted once.
    created_subjects: set[int] = set()
    existing_subjects: set[int] = set()
    done = 0
    with transaction.atomic(), src.open() as handle:
        lock_study_for_import(study)
        for batch in batched(_parsed(handle, options, None)):
            conversations: list[ParsedConversation] = []
            for line, result in batch:
                if not isinstance(result, ParsedConversation):
                    error = result or LineError("(json)", UNREADABLE)
                    raise changed_during_import(src.filename, line, error)
                conversations.append(result)
            subject_ids = _subjects_for(study, conversations, created_subjects, existing_subjects)
            _store_batch(conversations, subject_ids, report)
            done += len(batch)
            report_progress(progress, done)
    report.created["subjects"] = len(created_subjects)
    report.existing["subjects"] = len(existing_subjects)
    return report


def _subjects_for(
    study: Study,
    conversations: list[ParsedConversation],
    created_subjects: set[int],
    existing_subjects: set[int],
) -> dict[tuple[str, str], int]:
    """Subject id per (source, external_id) of a batch, creating the missing subjects."""
    wanted: dict[tuple[str, str], bool] = {}
    for conv in conversations:
        wanted.setdefault((conv.source, conv.external_id), conv.is_synthetic)
    found: dict[tuple[str, str], int] = {}
    by_source: dict[str, list[str]] = {}
    for src, external_id in wanted:
        by_source.setdefault(src, []).append(external_id)
    for src, external_ids in by_source.items():
        rows = Subject.objects.filter(study=study, source=src, external_id__in=external_ids)
        for external_id, pk in rows.values_list("external_id", "id"):
            found[(src, external_id)] = pk
            if pk not in created_subjects:
                existing_subjects.add(pk)
    missing = [
        Subject(study=study, source=src, external_id=external_id, is_synthetic=synthetic)
        for (src, external_id), synthetic in wanted.items()
        if (src, external_id) not in found
    ]
    Subject.objects.bulk_create(missing)
    if missing and missing[0].pk is None:
        # Backends that cannot return ids from a bulk insert: look the new rows up by their key.
        for subject in missing:
            subject.pk = Subject.objects.values_list("id", flat=True).get(
                study=study, source=subject.source, external_id=subject.external_id
            )
    for subject in missing:
        found[(subject.source, subject.external_id)] = subject.pk
        created_subjects.add(subject.pk)
    return found


def _conversation_ids(keys: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Ids of the stored conversations among (subject id, hash) keys.

    A row-value IN is one probe of the unique (subject, hash) index per key, on SQLite and
    PostgreSQL alike; the ORM's `subject_id IN (...) AND hash IN (...)` would probe every
    combination of the two lists.
    """
    if not keys:
        return {}
    connection = connections[router.db_for_read(Conversation)]
    quote = connection.ops.quote_name
    found: dict[tuple[int, str], int] = {}
    ordered = sorted(keys)
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), KEYS_PER_QUERY):
            chunk = ordered[start : start + KEYS_PER_QUERY]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            sql = (
                f"SELECT {quote('subject_id')}, {quote('conversation_hash')}, {quote('id')} "  # noqa: S608 - no user input
                f"FROM {quote(Conversation._meta.db_table)} "
                f"WHERE ({quote('subject_id')}, {quote('conversation_hash')}) IN (VALUES {values})"
            )
            cursor.execute(sql, [part for key in chunk for part in key])
            for subject_id, conv_hash, pk in cursor.fetchall():
                found[(subject_id, conv_hash)] = pk
    return found


def _store_batch(
    conversations: list[ParsedConversation], subject_ids: dict[tuple[str, str], int], report: ImportReport
) -> None:
    keyed = [(subject_ids[(conv.source, conv.external_id)], conv) for conv in conversations]
    present = _conversation_ids({(subject_id, conv.conversation_hash) for subject_id, conv in keyed})
    new = [(subject_id, conv) for subject_id, conv in keyed if (subject_id, conv.conversation_hash) not in present]
    report.existing["conversations"] += len(keyed) - len(new)
    # Conversations and turns are nearly all the rows of a big import: plain inserts, then one
    # lookup for the new ids (the unique key finds them), instead of a model instance per row.
    now = timezone.now()
    insert_rows(
        Conversation,
        ("subject", "conversation_hash", "model", "timestamp", "metadata", "created_at"),
        ((subject_id, c.conversation_hash, c.model, c.timestamp, c.metadata, now) for subject_id, c in new),
    )
    ids = _conversation_ids({(subject_id, conv.conversation_hash) for subject_id, conv in new})
    report.created["turns"] += insert_rows(
        Turn,
        ("conversation", "index", "role", "content"),
        (
            (ids[(subject_id, conv.conversation_hash)], index, role, content)
            for subject_id, conv in new
            for index, (role, content) in enumerate(conv.turns)
        ),
    )
    report.created["conversations"] += len(new)
