"""prompts_import: JSONL and CSV, bad input, idempotent re-import."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from personalization.importers import ImportValidationError, prompts_import
from personalization.models import Prompt, Study, text_sha256
from tests.importers.conftest import WriteFile
from tests.importers.helpers import counts


def rejected(study: Study, path: Path, **kwargs: object) -> ImportValidationError:
    before = counts()
    with pytest.raises(ImportValidationError) as caught:
        prompts_import(study=study, path=path, filename=path.name, **kwargs)
    assert counts() == before
    return caught.value


def test_jsonl_prompts_are_stored_with_source_and_id(study: Study, write_file: WriteFile) -> None:
    path = write_file(
        "prompts.jsonl",
        [
            {"text": "Suggest a weekend itinerary", "source": "lima", "source_id": 17},
            {"prompt": "How do I fix a slow laptop?", "id": "a-2"},
            {"text": "Write a birthday message for my sister"},
        ],
    )

    report = prompts_import(study=study, path=path, source="demo")

    assert (report.kind, report.lines, report.created, report.existing) == (
        "prompts",
        3,
        {"prompts": 3},
        {"prompts": 0},
    )
    assert list(Prompt.objects.order_by("id").values_list("text", "source", "source_id")) == [
        ("Suggest a weekend itinerary", "lima", "17"),
        ("How do I fix a slow laptop?", "demo", "a-2"),
        ("Write a birthday message for my sister", "demo", ""),
    ]
    prompt = Prompt.objects.get(source_id="17")
    assert prompt.text_hash == text_sha256(prompt.text)


def test_csv_prompts_with_quoted_multiline_text(study: Study, write_file: WriteFile) -> None:
    path = write_file(
        "prompts.csv",
        ["source_id,text,source", '1,"Plan a picnic, please",lima', '2,"Two lines:\nfirst\nsecond",', "", "3,Short,"],
    )

    report = prompts_import(study=study, path=path, source="fallback")

    assert report.created == {"prompts": 3}
    assert list(Prompt.objects.order_by("id").values_list("source_id", "text", "source")) == [
        ("1", "Plan a picnic, please", "lima"),
        ("2", "Two lines:\nfirst\nsecond", "fallback"),
        ("3", "Short", "fallback"),
    ]


def test_format_is_sniffed_for_an_unnamed_stream(study: Study) -> None:
    report = prompts_import(study=study, stream=io.BytesIO(b"text\nHello there\n"), filename="upload")
    assert report.created == {"prompts": 1}
    report = prompts_import(study=study, stream=io.BytesIO(b'{"text": "Hi"}\n'), filename="upload")
    assert report.created == {"prompts": 1}


def test_reimport_stores_nothing_twice(study: Study, write_file: WriteFile) -> None:
    path = write_file("p.jsonl", [{"text": "One"}, {"text": "Two"}])
    prompts_import(study=study, path=path)
    write_file("p.jsonl", [{"text": "One"}, {"text": "Two"}, {"text": "Three"}])

    report = prompts_import(study=study, path=path)

    assert report.created == {"prompts": 1}
    assert report.existing == {"prompts": 2}
    assert Prompt.objects.count() == 3


def test_missing_text_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("p.jsonl", [{"text": "ok"}, {"source": "lima", "source_id": 1}]))
    assert error.errors == ["p.jsonl:2: text: missing required field ('text' or 'prompt')"]


def test_csv_without_text_column_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("p.csv", ["id,body", "1,Hello"]))
    assert error.errors == ["p.csv:1: text: the CSV header has no 'text' column (found: id, body)"]


def test_csv_row_with_wrong_column_count_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("p.csv", ["text,source", "Hello,a,b"]))
    assert error.errors == ["p.csv:2: (csv): expected 2 columns as in the header, got 3"]


def test_wrong_types_are_reported(study: Study, write_file: WriteFile) -> None:
    lines = [{"text": 5}, {"text": "ok", "source": ["lima"]}, {"text": "also ok", "source_id": {"n": 1}}, {"text": " "}]
    error = rejected(study, write_file("t.jsonl", lines))
    assert error.errors == [
        "t.jsonl:1: text: expected a string, got a number",
        "t.jsonl:2: source: expected a string, got a list",
        "t.jsonl:3: source_id: expected a string, got an object",
        "t.jsonl:4: text: must not be empty",
    ]


def test_malformed_json_is_reported(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("p.jsonl", [{"text": "ok"}, '{"text": "unterminated']))
    assert error.errors[0].startswith("p.jsonl:2: (json): malformed JSON: Unterminated string starting at")


def test_duplicates_within_the_file_are_reported(study: Study, write_file: WriteFile) -> None:
    lines = [
        {"text": "Same", "source_id": "1"},
        {"text": "Other", "source_id": "2"},
        {"text": "Same", "source_id": "3"},
        {"text": "Third", "source_id": "2"},
    ]
    error = rejected(study, write_file("d.jsonl", lines))
    assert error.errors == [
        "d.jsonl:3: text: duplicate prompt: the same text is on line 1",
        "d.jsonl:4: source_id: duplicate source_id '2' (first on line 2)",
    ]


def test_non_utf8_csv_is_reported_with_its_line(study: Study, write_file: WriteFile) -> None:
    error = rejected(study, write_file("p.csv", ["text", "Caf\u00e9 ideas", "Cr\u00e8me".encode("cp1252")]))
    assert error.errors == ["p.csv:3: (encoding): not valid UTF-8 (byte 0xe8 at byte 3 of the line)"]


def test_empty_file_and_header_only_csv_are_reported(study: Study, write_file: WriteFile) -> None:
    assert rejected(study, write_file("e.jsonl", [])).errors == [
        "e.jsonl:1: (file): the file is empty: it has no records"
    ]
    assert rejected(study, write_file("h.csv", ["text,source"])).errors == [
        "h.csv:1: (file): the file is empty: it has no records"
    ]


def test_unparsable_csv_row_is_reported(study: Study, write_file: WriteFile) -> None:
    huge = "x" * 200_000  # past the csv module's field size limit
    error = rejected(study, write_file("big.csv", ["text", "fine", f'"{huge}"', "also fine"]))
    assert error.errors == ["big.csv:3: (csv): malformed CSV: field larger than field limit (131072)"]
