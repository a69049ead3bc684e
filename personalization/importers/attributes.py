"""Pre-extracted attributes JSONL, in the form the published study's tool wrote, one subject a line:

    {"user_id": "<subject external id>", "source": "<optional, when the id exists under several sources>",
     "merged_attributes": [
        {"attribute": "Is vegetarian", "reason": "...", "confidence": 0.8 | "high" | "medium" | "low",
         "original_attributes": ["Avoids meat", {"attribute": "...", "reason": "...", "evidence": [...]}],
         "evidence": [{"conversation_hash": "...", "turn_index": 0}, {"conversation_index": 1, "turn_index": 2}]}]}

Merged attributes become Attribute(level=merged), originals Attribute(level=original) linked through
`merged_from`; all with origin "imported". Evidence references name a conversation of the subject by
hash, or by 0-based position among the subject's conversations in their stored order (timestamp,
then import order), and a 0-based turn index within it; each resolves to a Turn row. A string (or a
list of strings) as evidence is kept as quoted text in the attribute's metadata.

The subjects must already exist in the study (import their conversations first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from django.db import transaction
from django.utils import timezone

from personalization.importers.common import (
    UNREADABLE,
    BatchErrors,
    ErrorCollector,
    ErrorSink,
    ImportReport,
    LineError,
    Progress,
    Source,
    as_index,
    as_list,
    as_object,
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
from personalization.models import Attribute, Conversation, Study, Subject, Turn

CONFIDENCE_WORDS = {"high": 0.9, "medium": 0.6, "low": 0.3}
EXTERNAL_ID_MAX = max_length(Subject, "external_id")
MERGED_KEYS = {"attribute", "reason", "confidence", "original_attributes", "evidence"}


@dataclass
class EvidenceRef:
    where: str
    turn_index: int
    conversation_hash: str | None = None
    conversation_index: int | None = None


@dataclass
class ParsedAttribute:
    where: str
    text: str
    reason: str
    confidence: float | None
    refs: list[EvidenceRef]
    quotes: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    originals: list[ParsedAttribute] = field(default_factory=list)

    def row_metadata(self) -> dict[str, Any]:
        return {**self.metadata, "evidence_text": self.quotes} if self.quotes else dict(self.metadata)


@dataclass
class ParsedSubject:
    line: int
    user_id: str
    source: str
    merged: list[ParsedAttribute]


def _confidence(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in CONFIDENCE_WORDS:
            return CONFIDENCE_WORDS[word]
        raise LineError(name, f"expected a number from 0 to 1 or high/medium/low, got {value[:20]!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LineError(name, f"expected a number from 0 to 1 or high/medium/low, got {json_type(value)}")
    if not 0 <= value <= 1:
        raise LineError(name, f"must be between 0 and 1, got {value}")
    return float(value)


def _evidence(value: Any, name: str) -> tuple[list[EvidenceRef], list[str]]:
    """Turn references and quoted text. One string, or a list of strings and reference objects."""
    if value is None:
        return [], []
    if isinstance(value, str):
        return [], [value]
    refs: list[EvidenceRef] = []
    quotes: list[str] = []
    for i, item in enumerate(as_list(value, name)):
        item_name = f"{name}[{i}]"
        if isinstance(item, str):
            quotes.append(item)
            continue
        item = as_object(item, item_name)
        turn_index = as_index(require(item, "turn_index", f"{item_name}."), f"{item_name}.turn_index")
        if item.get("conversation_hash") is not None:
            conv_hash = as_text(item["conversation_hash"], f"{item_name}.conversation_hash", is_id=True)
            refs.append(EvidenceRef(where=item_name, turn_index=turn_index, conversation_hash=conv_hash))
        elif item.get("conversation_index") is not None:
            conv_index = as_index(item["conversation_index"], f"{item_name}.conversation_index")
            refs.append(EvidenceRef(where=item_name, turn_index=turn_index, conversation_index=conv_index))
        else:
            raise LineError(f"{item_name}.conversation_hash", "missing ('conversation_hash' or 'conversation_index')")
    return refs, quotes


def _attribute(value: Any, name: str, *, merged: bool) -> ParsedAttribute:
    if isinstance(value, str) and not merged:
        text = as_text(value, name).strip()
        return ParsedAttribute(where=name, text=text, reason="", confidence=None, refs=[], quotes=[])
    item = as_object(value, name)
    text = as_text(require(item, "attribute", f"{name}."), f"{name}.attribute")
    reason = item.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise LineError(f"{name}.reason", f"expected a string, got {json_type(reason)}")
    refs, quotes = _evidence(item.get("evidence"), f"{name}.evidence")
    parsed = ParsedAttribute(
        where=name,
        text=text.strip(),
        reason=reason or "",
        confidence=_confidence(item.get("confidence"), f"{name}.confidence"),
        refs=refs,
        quotes=quotes,
    )
    if merged:
        # Extra scalar fields of the tool's output (category, ...) are kept for the researcher.
        parsed.metadata = {
            key: v for key, v in item.items() if key not in MERGED_KEYS and isinstance(v, str | int | float | bool)
        }
        originals = item.get("original_attributes")
        if originals is not None:
            for j, original in enumerate(as_list(originals, f"{name}.original_attributes")):
                parsed.originals.append(_attribute(original, f"{name}.original_attributes[{j}]", merged=False))
    return parsed


def parse_subject(record: dict[str, Any], *, line: int) -> ParsedSubject:
    """Checks one line; raises LineError naming the field."""
    user_id = as_text(require(record, "user_id"), "user_id", max_length=EXTERNAL_ID_MAX, is_id=True)
    source = record.get("source")
    source = as_text(source, "source") if source is not None else ""
    merged: list[ParsedAttribute] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(as_list(require(record, "merged_attributes"), "merged_attributes")):
        attribute = _attribute(item, f"merged_attributes[{i}]", merged=True)
        if attribute.text in seen:
            raise LineError(
                f"merged_attributes[{i}].attribute",
                f"duplicate attribute {attribute.text[:60]!r} (also merged_attributes[{seen[attribute.text]}])",
            )
        seen[attribute.text] = i
        merged.append(attribute)
    return ParsedSubject(line=line, user_id=user_id, source=source, merged=merged)


def _parsed(handle: BinaryIO, errors: ErrorSink | None) -> Iterator[tuple[int, ParsedSubject | LineError | None]]:
    for line, record in jsonl_records(handle, errors):
        if record is None:
            yield line, None
            continue
        try:
            yield line, parse_subject(record, line=line)
        except LineError as exc:
            yield line, exc


@dataclass
class _Resolved:
    """A batch's subjects, mapped to ids, and each evidence reference mapped to a Turn id."""

    subject_ids: dict[int, int] = field(default_factory=dict)  # line -> subject id
    turn_ids: dict[int, int] = field(default_factory=dict)  # id(EvidenceRef) -> turn id


def _refs_of(subject: ParsedSubject) -> Iterator[EvidenceRef]:
    for merged in subject.merged:
        yield from merged.refs
        for original in merged.originals:
            yield from original.refs


def _resolve(study: Study, subjects: list[ParsedSubject], report_error: Any) -> _Resolved:
    """Looks a batch's subjects, conversations and turns up; reports what does not exist.

    `report_error(line, field_name, message)` receives each problem. Reads only; bounded by the batch.
    """
    resolved = _Resolved()
    candidates: dict[str, list[tuple[str, int]]] = {}
    rows = Subject.objects.filter(study=study, external_id__in={s.user_id for s in subjects})
    for external_id, source, pk in rows.values_list("external_id", "source", "id"):
        candidates.setdefault(external_id, []).append((source, pk))
    for subject in subjects:
        matches = [pk for source, pk in candidates.get(subject.user_id, []) if subject.source in ("", source)]
        if not matches:
            where = f" with source {subject.source!r}" if subject.source else ""
            report_error(
                subject.line,
                "user_id",
                f"no subject {subject.user_id[:64]!r}{where} in study {study.name!r} (import its conversations first)",
            )
        elif len(matches) > 1:
            sources = ", ".join(sorted(source for source, _ in candidates[subject.user_id]))
            report_error(
                subject.line,
                "user_id",
                f"subject {subject.user_id[:64]!r} exists under several sources ({sources}): add a 'source' field",
            )
        else:
            resolved.subject_ids[subject.line] = matches[0]

    with_refs = [s for s in subjects if s.line in resolved.subject_ids and any(True for _ in _refs_of(s))]
    if not with_refs:
        return resolved
    subject_ids = {resolved.subject_ids[s.line] for s in with_refs}
    # Every conversation of these subjects in stored order: indexes count in it, hashes look up in it.
    conversations: dict[int, list[tuple[int, str]]] = {}
    ordered = Conversation.objects.filter(subject_id__in=subject_ids).order_by("subject_id", "timestamp", "id")
    for subject_id, pk, conv_hash in ordered.values_list("subject_id", "id", "conversation_hash"):
        conversations.setdefault(subject_id, []).append((pk, conv_hash))
    turns: dict[tuple[int, int], int] = {}
    turn_counts: dict[int, int] = {}
    conv_ids = [pk for convs in conversations.values() for pk, _ in convs]
    for conv_id, index, pk in Turn.objects.filter(conversation_id__in=conv_ids).values_list(
        "conversation_id", "index", "id"
    ):
        turns[(conv_id, index)] = pk
        turn_counts[conv_id] = turn_counts.get(conv_id, 0) + 1

    for subject in with_refs:
        convs = conversations.get(resolved.subject_ids[subject.line], [])
        by_hash = {conv_hash: pk for pk, conv_hash in convs}
        for ref in _refs_of(subject):
            target: int | None
            if ref.conversation_hash is not None:
                target = by_hash.get(ref.conversation_hash)
                if target is None:
                    report_error(
                        subject.line,
                        f"{ref.where}.conversation_hash",
                        f"subject {subject.user_id[:64]!r} has no conversation {ref.conversation_hash[:64]!r}",
                    )
                    continue
            else:
                assert ref.conversation_index is not None  # noqa: S101 - _evidence sets one of the two
                if ref.conversation_index >= len(convs):
                    report_error(
                        subject.line,
                        f"{ref.where}.conversation_index",
                        f"subject {subject.user_id[:64]!r} has {len(convs)} conversations, "
                        f"no conversation {ref.conversation_index} (indexes start at 0)",
                    )
                    continue
                target = convs[ref.conversation_index][0]
            turn_id = turns.get((target, ref.turn_index))
            if turn_id is None:
                report_error(
                    subject.line,
                    f"{ref.where}.turn_index",
                    f"the conversation has {turn_counts.get(target, 0)} turns, "
                    f"no turn {ref.turn_index} (indexes start at 0)",
                )
                continue
            resolved.turn_ids[id(ref)] = turn_id
    return resolved


def _validate(src: Source, study: Study) -> int:
    errors = ErrorCollector(src.filename)
    batch_errors = BatchErrors()
    # Subject id -> first line naming it: the same subject twice is a duplicate, whether or not
    # the lines spelled out its source.
    first_line: dict[int, int] = {}
    records = 0
    with src.open() as handle:
        for batch in batched(_parsed(handle, batch_errors)):
            subjects: list[ParsedSubject] = []
            for line, result in batch:
                records += 1
                if isinstance(result, LineError):
                    batch_errors.add(line, result.field_name, result.message)
                elif result is not None:
                    subjects.append(result)
            resolved = _resolve(study, subjects, batch_errors.add)
            for subject in subjects:
                subject_id = resolved.subject_ids.get(subject.line)
                if subject_id is None:
                    continue
                first = first_line.setdefault(subject_id, subject.line)
                if first != subject.line:
                    message = f"duplicate user_id {subject.user_id[:64]!r} (first on line {first})"
                    batch_errors.add(subject.line, "user_id", message)
            batch_errors.flush_into(errors)
    errors.check_not_empty(records)
    errors.raise_if_any()
    return records


def attributes_import(
    *,
    study: Study,
    path: Path | None = None,
    stream: BinaryIO | None = None,
    filename: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """Validates the whole file (subjects and evidence turns must exist), then stores the merged and
    original attributes, their merged_from links and evidence links in one transaction.

    Idempotent: imported attributes already present (subject, level, text) are reused, not
    duplicated, and only missing links are added. A stream must be seekable (it is read twice).
    Raises ImportValidationError, storing nothing.
    """
    src = Source.of(path=path, stream=stream, filename=filename)
    records = _validate(src, study)
    names = ("merged_attributes", "original_attributes", "merged_from_links", "evidence_links")
    report = ImportReport(
        kind="attributes", lines=records, created=dict.fromkeys(names, 0), existing=dict.fromkeys(names, 0)
    )

    def fail(line: int, field_name: str, message: str) -> NoReturn:
        raise changed_during_import(src.filename, line, LineError(field_name, message))

    done = 0
    with transaction.atomic(), src.open() as handle:
        lock_study_for_import(study)
        for batch in batched(_parsed(handle, None)):
            subjects: list[ParsedSubject] = []
            for line, result in batch:
                if not isinstance(result, ParsedSubject):
                    fail(line, getattr(result, "field_name", "(json)"), getattr(result, "message", UNREADABLE))
                subjects.append(result)
            _store_batch(subjects, _resolve(study, subjects, fail), report)
            done += len(batch)
            report_progress(progress, done)
    return report


def _imported_attribute_ids(
    subject_ids: set[int], wanted: dict[tuple[int, str, str], ParsedAttribute]
) -> dict[tuple[int, str, str], int]:
    """Ids of the wanted (subject, level, text) rows already stored.

    Reads all imported attributes of the batch's subjects (tens each): filtering on the texts as
    well would make the database probe every subject-text combination.
    """
    rows = Attribute.objects.filter(subject_id__in=subject_ids, model_run__isnull=True).values_list(
        "subject_id", "level", "text", "id"
    )
    return {(s, level, text): pk for s, level, text, pk in rows.iterator() if (s, level, text) in wanted}


def _store_batch(subjects: list[ParsedSubject], resolved: _Resolved, report: ImportReport) -> None:
    merged_level, original_level = Attribute.Level.MERGED, Attribute.Level.ORIGINAL
    # (subject id, level, text) -> the parsed attribute that first names it in this batch.
    wanted: dict[tuple[int, str, str], ParsedAttribute] = {}
    for subject in subjects:
        subject_id = resolved.subject_ids[subject.line]
        for merged in subject.merged:
            wanted.setdefault((subject_id, merged_level, merged.text), merged)
            for original in merged.originals:
                wanted.setdefault((subject_id, original_level, original.text), original)

    subject_ids = set(resolved.subject_ids.values())
    ids = _imported_attribute_ids(subject_ids, wanted)
    new_keys = [key for key in wanted if key not in ids]
    now, imported = timezone.now(), Attribute.Origin.IMPORTED.value
    insert_rows(
        Attribute,
        ("subject", "level", "origin", "text", "reason", "confidence", "metadata", "created_at"),
        (
            (subject_id, level, imported, text, attr.reason, attr.confidence, attr.row_metadata(), now)
            for (subject_id, level, text), attr in ((key, wanted[key]) for key in new_keys)
        ),
    )
    if new_keys:
        ids = _imported_attribute_ids(subject_ids, wanted)
    created = set(new_keys)
    for key in wanted:
        counts = report.created if key in created else report.existing
        counts[f"{key[1]}_attributes"] += 1

    merged_from: set[tuple[int, int]] = set()
    evidence: set[tuple[int, int]] = set()
    for subject in subjects:
        subject_id = resolved.subject_ids[subject.line]
        for merged in subject.merged:
            merged_id = ids[(subject_id, merged_level, merged.text)]
            evidence.update((merged_id, resolved.turn_ids[id(ref)]) for ref in merged.refs)
            for original in merged.originals:
                original_id = ids[(subject_id, original_level, original.text)]
                merged_from.add((merged_id, original_id))
                evidence.update((original_id, resolved.turn_ids[id(ref)]) for ref in original.refs)
    _add_links(Attribute.merged_from.through, "from_attribute", "to_attribute", merged_from, report, "merged_from")
    _add_links(Attribute.evidence_turns.through, "attribute", "turn", evidence, report, "evidence")


def _add_links(
    through: Any, left: str, right: str, pairs: set[tuple[int, int]], report: ImportReport, name: str
) -> None:
    """Adds the many-to-many rows that are missing; counts those already there.

    `left` and `right` name the through model's two foreign keys.
    """
    if not pairs:
        return
    present = through.objects.filter(**{f"{left}_id__in": {a for a, _ in pairs}}).values_list(
        f"{left}_id", f"{right}_id"
    )
    existing = set(present.iterator())
    missing = [(a, b) for a, b in sorted(pairs) if (a, b) not in existing]
    report.created[f"{name}_links"] += insert_rows(through, (left, right), missing)
    report.existing[f"{name}_links"] += len(pairs) - len(missing)
