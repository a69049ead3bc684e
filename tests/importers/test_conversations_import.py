"""conversations_import: both JSONL forms, every kind of bad input, idempotent re-import, streams."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

from personalization.importers import ImportReport, ImportValidationError, conversations_import
from personalization.importers import conversations as conversations_module
from personalization.importers.conversations import turns_hash
from personalization.models import Conversation, Study, Subject
from tests.importers.conftest import WriteFile
from tests.importers.helpers import counts, openai_line, wildchat_line


def rejected(study: Study, path: Path, **kwargs: object) -> ImportValidationError:
    """Imports a bad file, asserting that it is rejected and that nothing at all was stored."""
    before = counts()
    kwargs.setdefault("filename", path.name)
    with pytest.raises(ImportValidationError) as caught:
        conversations_import(study=study, path=path, **kwargs)
    assert counts() == before
    return caught.value


def test_wildchat_form_groups_conversations_into_subjects(study: Study, wildchat_file: Path) -> None:
    report = conversations_import(study=study, path=wildchat_file, source="wildchat")

    assert report.kind == "conversations"
    assert report.lines == 3
    assert report.created == {"subjects": 2, "conversations": 3, "turns": 7}
    assert report.existing == {"subjects": 0, "conversations": 0}
    subject = Subject.objects.get(study=study, external_id="ip-a")
    assert (subject.source, subject.is_synthetic) == ("wildchat", False)
    conversation = subject.conversations.get(conversation_hash="h-1")
    assert conversation.model == "gpt-4-0314"
    assert conversation.timestamp == datetime(2023, 4, 9, 0, 2, 53, tzinfo=UTC)
    assert conversation.metadata == {"language": "English", "country": "Portugal"}
    assert [(t.index, t.role, t.content) for t in conversation.turns.all()] == [
        (0, "user", "Vegetarian lasagna ideas?"),
        (1, "assistant", "Try spinach."),
    ]


def test_openai_form_with_computed_hash_and_synthetic_flag(study: Study, write_file: WriteFile) -> None:
    turns = [("user", "Plan a week of meals"), ("assistant", "Monday: lentil soup.")]
    path = write_file(
        "synthetic.jsonl",
        [
            openai_line("persona-1", turns),
            openai_line("persona-1", [("user", "Hello")], id="given-id"),
            {"subject_id": "persona-2", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
        ],
    )

    report = conversations_import(study=study, path=path, source="synthetic-personas", is_synthetic=True)

    assert report.created == {"subjects": 2, "conversations": 3, "turns": 4}
    subject = Subject.objects.get(external_id="persona-1")
    assert (subject.source, subject.is_synthetic) == ("synthetic-personas", True)
    assert set(subject.conversations.values_list("conversation_hash", flat=True)) == {turns_hash(turns), "given-id"}
    assert Conversation.objects.get(subject__external_id="persona-2").turns.get().content == "Hi"


def test_computed_hash_is_sha256_of_canonical_turns() -> None:
    # Pinned so hashes stay stable across releases: re-imports depend on them.
    canonical = b'[{"content":"Hi","role":"user"},{"content":"Ol\xc3\xa1","role":"assistant"}]'
    assert turns_hash([("user", "Hi"), ("assistant", "Olá")]) == hashlib.sha256(canonical).hexdigest()


def test_per_line_source_and_synthetic_flag_override_the_defaults(study: Study, write_file: WriteFile) -> None:
    path = write_file(
        "mixed.jsonl",
        [
            wildchat_line("h-1", "ip-a", [("user", "a")]),
            wildchat_line("h-2", "ip-z", [("user", "b")], source="bench-x", is_synthetic=True),
        ],
    )
    conversations_import(study=study, path=path, source="wildchat")
    assert set(Subject.objects.values_list("external_id", "source", "is_synthetic")) == {
        ("ip-a", "wildchat", False),
        ("ip-z", "bench-x", True),
    }


def test_subject_key_option_names_the_subject_field(study: Study, write_file: WriteFile) -> None:
    line = wildchat_line("h-1", "ip-a", [("user", "a")], user_hash="person-7")
    conversations_import(study=study, path=write_file("k.jsonl", [line]), subject_key="user_hash")
    assert Subject.objects.get().external_id == "person-7"


def test_reimporting_the_same_file_stores_nothing_twice(study: Study, wildchat_file: Path) -> None:
    conversations_import(study=study, path=wildchat_file)
    before = counts()

    report = conversations_import(study=study, path=wildchat_file)

    assert counts() == before
    assert report.created == {"subjects": 0, "conversations": 0, "turns": 0}
    assert report.existing == {"subjects": 2, "conversations": 3}


def test_import_into_another_study_is_independent(study: Study, wildchat_file: Path) -> None:
    other = Study.objects.create(name="Other")
    conversations_import(study=study, path=wildchat_file)
    report = conversations_import(study=other, path=wildchat_file)
    assert report.created["conversations"] == 3
    assert Subject.objects.filter(study=other).count() == 2


def test_missing_field_names_file_line_and_field(study: Study, write_file: WriteFile) -> None:
    good = wildchat_line("h-1", "ip-a", [("user", "a")])
    no_ip = wildchat_line("h-2", "ip-a", [("user", "b")])
    del no_ip["hashed_ip"]
    no_content = wildchat_line("h-3", "ip-a", [("user", "c")])
    del no_content["conversation"][0]["content"]
    error = rejected(study, write_file("missing.jsonl", [good, no_ip, no_content]))
    assert error.errors[0].startswith("missing.jsonl:2: hashed_ip: missing required field")
    assert error.errors[1] == "missing.jsonl:3: conversation[0].content: missing required field"
    assert error.total == 2


def test_missing_turn_list_in_auto_mode_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("none.jsonl", [{"user": "u", "text": "hello"}]))
    assert error.errors == [
        "none.jsonl:1: messages: missing required field ('messages' in OpenAI form, or 'conversation' in WildChat form)"
    ]


def test_wrong_types_are_reported(study: Study, write_file: WriteFile) -> None:
    lines = [
        {**wildchat_line("h-1", "ip-a", [("user", "a")]), "conversation": "hello"},
        wildchat_line("h-2", "ip-a", [("user", "b")], is_synthetic="yes"),
        {**wildchat_line("h-3", "ip-a", [("user", "c")]), "conversation": [{"role": "user", "content": 7}]},
        {**wildchat_line("h-4", "ip-a", [("user", "d")]), "hashed_ip": ["x"]},
        {**wildchat_line("h-5", "ip-a", [("user", "e")]), "timestamp": "last tuesday"},
    ]
    error = rejected(study, write_file("types.jsonl", lines))
    assert error.errors == [
        "types.jsonl:1: conversation: expected a list, got a string",
        "types.jsonl:2: is_synthetic: expected true or false, got a string",
        "types.jsonl:3: conversation[0].content: expected a string, got a number",
        "types.jsonl:4: hashed_ip: expected a string, got a list",
        "types.jsonl:5: timestamp: not an ISO 8601 date-time: 'last tuesday'",
    ]


def test_malformed_json_is_reported_with_its_line(study: Study, write_file: WriteFile) -> None:
    good = wildchat_line("h-1", "ip-a", [("user", "a")])
    error = rejected(study, write_file("broken.jsonl", [good, '{"conversation_hash": "h-2",', "[1, 2]"]))
    assert error.errors[0].startswith("broken.jsonl:2: (json): malformed JSON: ")
    assert error.errors[1] == "broken.jsonl:3: (json): expected a JSON object, got a list"


def test_unknown_role_is_reported(study: Study, write_file: WriteFile) -> None:
    line = wildchat_line("h-1", "ip-a", [("user", "a"), ("tool", "b")])
    error = rejected(study, write_file("roles.jsonl", [line]))
    assert error.errors == [
        "roles.jsonl:1: conversation[1].role: unknown role 'tool' (expected system, user or assistant)"
    ]


def test_empty_conversation_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("empty-conv.jsonl", [openai_line("u1", [])]), fmt="openai")
    assert error.errors == ["empty-conv.jsonl:1: messages: empty conversation: it has no turns"]


def test_duplicate_conversation_in_one_file_is_reported(study: Study, write_file: WriteFile) -> None:
    line = wildchat_line("h-1", "ip-a", [("user", "a")])
    error = rejected(study, write_file("dup.jsonl", [line, wildchat_line("h-2", "ip-a", [("user", "b")]), line]))
    assert error.errors == [
        "dup.jsonl:3: conversation_hash: duplicate conversation 'h-1' of subject 'ip-a' (first on line 1)"
    ]


def test_duplicate_computed_hash_is_reported(study: Study, write_file: WriteFile) -> None:
    line = openai_line("u1", [("user", "same words")])
    error = rejected(study, write_file("dup-openai.jsonl", [line, line]))
    assert error.errors[0].startswith("dup-openai.jsonl:2: conversation_hash: duplicate conversation ")


def test_non_utf8_bytes_are_reported_with_their_line(study: Study, write_file: WriteFile) -> None:
    good = json.dumps(wildchat_line("h-1", "ip-a", [("user", "a")]))
    latin1 = json.dumps(wildchat_line("h-2", "ip-a", [("user", "café")]), ensure_ascii=False).encode("latin-1")
    error = rejected(study, write_file("latin1.jsonl", [good, latin1]))
    assert len(error.errors) == 1
    assert error.errors[0].startswith("latin1.jsonl:2: (encoding): not valid UTF-8 (byte 0xe9 at byte ")


def test_empty_file_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("empty.jsonl", ["", "   "]))
    assert error.errors == ["empty.jsonl:1: (file): the file is empty: it has no records"]


def test_forced_format_rejects_the_other_form(study: Study, wildchat_file: Path) -> None:
    error = rejected(study, wildchat_file, fmt="openai", filename="")
    assert error.errors[0] == f"{wildchat_file}:1: messages: missing required field"


def test_errors_are_capped_but_all_counted(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("many.jsonl", ["{oops"] * 50))
    assert len(error.errors) == 20
    assert error.total == 50
    assert str(error).endswith("... and 30 more (50 errors in total)")


def test_one_bad_line_at_the_end_stores_nothing_from_earlier_batches(study: Study, write_file: WriteFile) -> None:
    lines: list[dict | str | bytes] = [wildchat_line(f"h-{i}", f"ip-{i % 7}", [("user", f"q{i}")]) for i in range(2500)]
    lines.append(wildchat_line("h-last", "ip-a", [("robot", "x")]))
    error = rejected(study, write_file("late.jsonl", lines))
    assert error.errors == [
        "late.jsonl:2501: conversation[0].role: unknown role 'robot' (expected system, user or assistant)"
    ]


def test_import_from_a_stream_reports_progress(study: Study, wildchat_file: Path) -> None:
    seen: list[int] = []
    stream = io.BytesIO(wildchat_file.read_bytes())
    report = conversations_import(study=study, stream=stream, filename="upload.jsonl", progress=seen.append)
    assert report.created["conversations"] == 3
    assert seen == [3]


def test_stream_errors_use_the_given_filename(study: Study) -> None:
    with pytest.raises(ImportValidationError) as caught:
        conversations_import(study=study, stream=io.BytesIO(b"{bad\n"), filename="upload.jsonl")
    assert caught.value.errors[0].startswith("upload.jsonl:1: (json): malformed JSON")


def test_unseekable_stream_is_refused_with_a_clear_message(study: Study) -> None:
    class Pipe(io.RawIOBase):
        def seekable(self) -> bool:
            return False

    with pytest.raises(ValueError, match="must be seekable"):
        conversations_import(study=study, stream=Pipe(), filename="pipe.jsonl")


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_file_at_once_store_it_once(study: Study, wildchat_file: Path) -> None:
    barrier = threading.Barrier(2)
    reports: list[ImportReport] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(conversations_import(study=study, path=wildchat_file))
        except BaseException as exc:  # reported by the assertions below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert Conversation.objects.count() == 3
    assert Subject.objects.count() == 2
    if connection.vendor == "postgresql":
        # The second import waits for the study lock, then finds every row and skips it.
        assert failures == []
        assert sorted(r.created["conversations"] for r in reports) == [0, 3]
        assert sorted(r.existing["conversations"] for r in reports) == [0, 3]
    else:
        # SQLite serializes writers itself. The in-memory test database (shared cache) makes a
        # second writer fail at once instead of waiting as the file database of `make run`
        # does: then it must have stored nothing, and never hit a unique key.
        assert [r.created["conversations"] for r in reports if r.created["conversations"]] == [3]
        assert all("locked" in str(exc) for exc in failures), failures


def test_file_changed_between_the_passes_stores_nothing(
    study: Study, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the first batch of 1000 lines, so the rollback has written rows to undo.
    path = write_file("grows.jsonl", [wildchat_line(f"h-{i}", f"ip-{i % 9}", [("user", "q")]) for i in range(1200)])
    validate = conversations_module._validate

    def validate_then_corrupt(*args: object, **kwargs: object) -> int:
        records = validate(*args, **kwargs)
        with path.open("a") as handle:
            handle.write("{broken\n")
        return records

    monkeypatch.setattr(conversations_module, "_validate", validate_then_corrupt)
    error = rejected(study, path)
    assert error.errors == [
        "grows.jsonl:1201: (json): not a valid record any more (the data changed while it was being imported)"
    ]
