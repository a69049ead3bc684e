"""What every importer shares: the report, the validation error, streaming line readers and
field checks that name the place (file, line, field) of every problem.

Every importer reads its input twice: a validation pass over the whole file that stores
nothing, then a writing pass inside one transaction. Both passes stream, so a stream passed in
must be seekable (Django's TemporaryUploadedFile and InMemoryUploadedFile are).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from django.db import connections, router
from django.db.models import CharField, Field, Model

from personalization.models import Study

# Lines per batch (one round of lookups and inserts) and rows per insert statement: large
# enough to amortize round trips, small enough that a batch's objects stay a few MB.
BATCH_SIZE = 1000
# How many error lines an ImportValidationError lists; the total is always counted.
MAX_ERRORS = 20

Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import did: `lines` counts the records (non-blank lines) read; `created` and
    `existing` count rows by kind, the latter those already stored before this import."""

    kind: str
    lines: int
    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        created = ", ".join(f"{n} {name}" for name, n in self.created.items()) or "nothing"
        existing = ", ".join(f"{n} {name}" for name, n in self.existing.items()) or "nothing"
        return f"{self.kind}: {self.lines} lines read; created {created}; already present {existing}"


class ImportValidationError(Exception):
    """The file was rejected and nothing from it was stored.

    `errors` holds the first MAX_ERRORS problems as "file:line: field: message"; `total` counts
    all of them.
    """

    def __init__(self, errors: list[str], total: int | None = None) -> None:
        self.errors = list(errors)
        self.total = total if total is not None else len(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        lines = list(self.errors)
        if self.total > len(self.errors):
            lines.append(f"... and {self.total - len(self.errors)} more ({self.total} errors in total)")
        return "\n".join(lines)


class ErrorSink(Protocol):
    def add(self, line: int, field_name: str, message: str) -> None: ...


class ErrorCollector:
    """Keeps the first few errors verbatim and counts the rest, so a bad 100k-line file
    neither floods the report nor grows memory."""

    def __init__(self, filename: str, limit: int = MAX_ERRORS) -> None:
        self.filename = filename
        self.limit = limit
        self.errors: list[str] = []
        self.total = 0

    def add(self, line: int, field_name: str, message: str) -> None:
        self.total += 1
        if len(self.errors) < self.limit:
            self.errors.append(f"{self.filename}:{line}: {field_name}: {message}")

    def check_not_empty(self, records: int) -> None:
        if records == 0:
            self.add(1, "(file)", "the file is empty: it has no records")

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportValidationError(self.errors, self.total)


class BatchErrors:
    """Holds one batch's errors so they can be reported in line order, whichever check found them."""

    def __init__(self) -> None:
        self._items: list[tuple[int, str, str]] = []

    def add(self, line: int, field_name: str, message: str) -> None:
        self._items.append((line, field_name, message))

    def flush_into(self, errors: ErrorCollector) -> None:
        for item in sorted(self._items, key=lambda item: item[0]):
            errors.add(*item)
        self._items.clear()


class LineError(Exception):
    """A problem with one field of one line; the reader turns it into an error entry."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field_name = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


@dataclass
class Source:
    """Where an import reads from: a path (opened per pass) or a seekable binary stream."""

    path: Path | None
    stream: BinaryIO | None
    filename: str

    @classmethod
    def of(cls, *, path: Path | str | None, stream: BinaryIO | None, filename: str) -> Source:
        if (path is None) == (stream is None):
            raise ValueError("Pass exactly one of path= or stream=.")
        if stream is not None:
            seekable = getattr(stream, "seekable", None)
            if seekable is not None and not seekable():
                raise ValueError(
                    "The import stream must be seekable: it is read once to validate and once to write. "
                    "Django's uploaded files are; copy other streams to a temporary file first."
                )
            if not filename:
                # An open file knows its name; a temporary file's "name" may be a descriptor number.
                name = getattr(stream, "name", None)
                filename = Path(name).name if isinstance(name, str) and name else "<upload>"
            return cls(path=None, stream=stream, filename=filename)
        assert path is not None  # noqa: S101 - checked above
        return cls(path=Path(path), stream=None, filename=filename or str(path))

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """Opens the input from its start; a stream is rewound and left open for its owner."""
        if self.path is not None:
            with self.path.open("rb") as handle:
                yield handle
        else:
            assert self.stream is not None  # noqa: S101 - Source.of guarantees one of the two
            self.stream.seek(0)
            yield self.stream

    def head(self, size: int = 4096) -> bytes:
        with self.open() as handle:
            return handle.read(size)


def decoded_lines(handle: BinaryIO, errors: ErrorSink | None) -> Iterator[tuple[int, str]]:
    """Yields (line number, text) for each physical line, decoded as UTF-8.

    A line that is not valid UTF-8 is reported (when `errors` is given) and then decoded with
    replacement characters so the rest of the file is still checked.
    """
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if errors is not None:
                bad = raw[exc.start : exc.start + 1].hex()
                errors.add(number, "(encoding)", f"not valid UTF-8 (byte 0x{bad} at byte {exc.start + 1} of the line)")
            text = raw.decode("utf-8", errors="replace")
        yield number, text


def jsonl_records(handle: BinaryIO, errors: ErrorSink | None) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yields (line number, object) for every non-blank line; the object is None when the line
    is not a JSON object (the problem is reported to `errors`)."""
    for number, text in decoded_lines(handle, errors):
        if not text.strip():
            continue
        try:
            value = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            if errors is not None:
                errors.add(number, "(json)", f"malformed JSON: {exc.msg} (column {exc.colno})")
            yield number, None
            continue
        if not isinstance(value, dict):
            if errors is not None:
                errors.add(number, "(json)", f"expected a JSON object, got {json_type(value)}")
            yield number, None
            continue
        yield number, value


def csv_rows(handle: BinaryIO, errors: ErrorSink | None) -> Iterator[tuple[int, list[str] | None]]:
    """Yields (line number, cells) for every non-blank CSV row, header included. The number is
    that of the row's first physical line (a quoted field may span lines); cells is None when
    the row could not be parsed (the problem is reported to `errors`)."""
    reader = csv.reader(text for _, text in decoded_lines(handle, errors))
    next_line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if errors is not None:
                errors.add(next_line, "(csv)", f"malformed CSV: {exc}")
            yield next_line, None
            next_line = reader.line_num + 1
            continue
        line, next_line = next_line, reader.line_num + 1
        if any(cell.strip() for cell in row):
            yield line, row


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def require(record: dict[str, Any], key: str, where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in record:
        raise LineError(name, "missing required field")
    return record[key]


def as_text(
    value: Any, name: str, *, max_length: int | None = None, allow_empty: bool = False, is_id: bool = False
) -> str:
    """A non-empty string; an id (`is_id`) may also be given as an integer."""
    if isinstance(value, bool) or not isinstance(value, str | int) or (isinstance(value, int) and not is_id):
        raise LineError(name, f"expected a string, got {json_type(value)}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise LineError(name, "must not be empty")
    if max_length is not None and len(text) > max_length:
        raise LineError(name, f"longer than {max_length} characters")
    return text


def as_optional_text(
    record: dict[str, Any], key: str, *, max_length: int | None = None, where: str = "", is_id: bool = False
) -> str:
    value = record.get(key)
    if value is None:
        return ""
    return as_text(value, f"{where}{key}", max_length=max_length, allow_empty=True, is_id=is_id)


def as_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise LineError(name, f"expected true or false, got {json_type(value)}")
    return value


def as_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise LineError(name, f"expected a list, got {json_type(value)}")
    return value


def as_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LineError(name, f"expected an object, got {json_type(value)}")
    return value


def as_index(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError(name, f"expected a whole number, got {json_type(value)}")
    if value < 0:
        raise LineError(name, "must not be negative")
    return value


def max_length(model: type[Model], name: str) -> int:
    """A CharField's max_length, for checking values before they reach the database."""
    field = model._meta.get_field(name)
    assert isinstance(field, CharField) and field.max_length is not None  # noqa: S101 - a programming error
    return field.max_length


def key_digest(*parts: str) -> bytes:
    """A compact fingerprint of a record's identity: the duplicate check keeps one per line, so
    16 bytes instead of the full key keeps a 100k-line file's index to a few MB."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.digest()


class DuplicateIndex:
    """Remembers where each identity was first seen, to report duplicates within a file."""

    def __init__(self) -> None:
        self._first_line: dict[bytes, int] = {}

    def seen(self, line: int, *parts: str) -> int | None:
        """Returns the earlier line with the same identity, or records this one and returns None."""
        key = key_digest(*parts)
        first = self._first_line.get(key)
        if first is None:
            self._first_line[key] = line
        return first


def sniff_is_json(head: bytes) -> bool:
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return stripped.startswith(b"{")


def lock_study_for_import(study: Study) -> None:
    """Serializes writing passes into one study (call inside the transaction).

    Two imports of the same file at once would otherwise both see the rows as missing and the
    second would fail on the unique keys; with the study row locked, the second waits, then
    finds the first one's rows and skips them. The lock lasts the writing pass, which reads a
    local file and the database only. Other study-level writers (study design) wait as well.
    """
    Study.objects.select_for_update().filter(pk=study.pk).values_list("pk", flat=True).first()


def report_progress(progress: Progress | None, lines_done: int) -> None:
    if progress is not None:
        progress(lines_done)


def batched(items: Iterator[Any], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Column types whose Python values (int, str) every supported database takes as they are.
PLAIN_TYPES = {"CharField", "TextField", "IntegerField", "PositiveIntegerField", "BigIntegerField", "ForeignKey"}


def insert_rows(model: type[Model], field_names: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
    """Inserts rows with multi-row INSERT statements and returns how many.

    For the bulk of a big import: no model instance per row and no per-value ORM compilation
    (several times faster than bulk_create). Values of non-plain columns (dates, JSON) go
    through the field's own get_db_prep_save; no signals are sent and no ids come back.
    """
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [cast(Field, model._meta.get_field(name)) for name in field_names]
    preparers = [None if f.get_internal_type() in PLAIN_TYPES else f for f in fields]
    needs_prep = any(preparers)
    columns = ", ".join(quote(cast(str, f.column)) for f in fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 - names from the model
    group = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # SQLite caps the parameters of one statement; PostgreSQL takes a whole batch.
    per_statement = max(1, min(BATCH_SIZE, connection.ops.bulk_batch_size(fields, [None] * BATCH_SIZE)))
    statements: dict[int, str] = {}
    count = 0
    with connection.cursor() as cursor:
        for chunk in batched(iter(rows), per_statement):
            if needs_prep:
                chunk = [
                    tuple(
                        v if f is None else f.get_db_prep_save(v, connection)
                        for f, v in zip(preparers, row, strict=True)
                    )
                    for row in chunk
                ]
            sql = statements.get(len(chunk))
            if sql is None:
                sql = statements[len(chunk)] = head + ", ".join([group] * len(chunk))
            cursor.execute(sql, [value for row in chunk for value in row])
            count += len(chunk)
    return count


# The writing pass re-reads without collecting errors; a record that fails there was fine before.
UNREADABLE = "not a valid record any more"


def changed_during_import(filename: str, line: int, error: LineError) -> ImportValidationError:
    """The writing pass found a problem the validation pass did not: the input changed in between."""
    return ImportValidationError(
        [f"{filename}:{line}: {error.field_name}: {error.message} (the data changed while it was being imported)"]
    )
