"""attributes_import: the published tool's form, evidence turn resolution, bad input, re-import."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalization.importers import ImportValidationError, attributes_import, conversations_import
from personalization.models import Attribute, Study, Subject, Turn
from tests.importers.conftest import WriteFile
from tests.importers.helpers import counts, wildchat_line


def rejected(study: Study, path: Path) -> ImportValidationError:
    before = counts()
    with pytest.raises(ImportValidationError) as caught:
        attributes_import(study=study, path=path, filename=path.name)
    assert counts() == before
    return caught.value


def subject_line(user_id: str = "ip-a", **merged_overrides: object) -> dict:
    merged = {
        "attribute": "Is vegetarian",
        "reason": "Asks for meatless recipes",
        "confidence": 0.8,
        "original_attributes": [
            "Cooks lasagna",
            {
                "attribute": "Avoids meat",
                "reason": "Wants spinach",
                "evidence": [{"conversation_hash": "h-1", "turn_index": 0}],
            },
        ],
        "evidence": [{"conversation_hash": "h-1", "turn_index": 0}, {"conversation_index": 1, "turn_index": 1}],
        **merged_overrides,
    }
    return {"user_id": user_id, "merged_attributes": [merged]}


def turn(study: Study, conv_hash: str, index: int) -> Turn:
    return Turn.objects.get(conversation__subject__study=study, conversation__conversation_hash=conv_hash, index=index)


def test_merged_and_original_attributes_are_stored_and_linked(imported_study: Study, write_file: WriteFile) -> None:
    second = {"attribute": "Works night shifts", "reason": "Sleep tips", "confidence": "high", "category": "work"}
    line = subject_line()
    line["merged_attributes"].append(second)
    path = write_file("attributes.jsonl", [line, {"user_id": "ip-b", "merged_attributes": []}])

    report = attributes_import(study=imported_study, path=path)

    assert report.kind == "attributes"
    assert report.lines == 2
    assert report.created == {
        "merged_attributes": 2,
        "original_attributes": 2,
        "merged_from_links": 2,
        "evidence_links": 3,
    }
    merged = Attribute.objects.get(level=Attribute.Level.MERGED, text="Is vegetarian")
    assert (merged.origin, merged.model_run, merged.reason, merged.confidence) == (
        Attribute.Origin.IMPORTED,
        None,
        "Asks for meatless recipes",
        0.8,
    )
    assert set(merged.merged_from.values_list("text", "level")) == {
        ("Cooks lasagna", Attribute.Level.ORIGINAL),
        ("Avoids meat", Attribute.Level.ORIGINAL),
    }
    night = Attribute.objects.get(text="Works night shifts")
    assert (night.confidence, night.metadata) == (0.9, {"category": "work"})


def test_evidence_resolves_to_turns_by_hash_and_by_position(imported_study: Study, write_file: WriteFile) -> None:
    attributes_import(study=imported_study, path=write_file("a.jsonl", [subject_line()]))

    merged = Attribute.objects.get(text="Is vegetarian")
    # conversation_index 1 of ip-a is h-2: same timestamp, so import order decides.
    assert set(merged.evidence_turns.all()) == {turn(imported_study, "h-1", 0), turn(imported_study, "h-2", 1)}
    assert list(Attribute.objects.get(text="Avoids meat").evidence_turns.all()) == [turn(imported_study, "h-1", 0)]


def test_quoted_text_evidence_is_kept_in_metadata(imported_study: Study, write_file: WriteFile) -> None:
    line = subject_line(evidence=["I never eat meat", {"conversation_hash": "h-1", "turn_index": 1}])
    attributes_import(study=imported_study, path=write_file("q.jsonl", [line]))
    merged = Attribute.objects.get(text="Is vegetarian")
    assert merged.metadata == {"evidence_text": ["I never eat meat"]}
    assert list(merged.evidence_turns.all()) == [turn(imported_study, "h-1", 1)]


def test_reimport_stores_nothing_twice(imported_study: Study, write_file: WriteFile) -> None:
    path = write_file("a.jsonl", [subject_line()])
    attributes_import(study=imported_study, path=path)
    before = counts()

    report = attributes_import(study=imported_study, path=path)

    assert counts() == before
    assert report.created == dict.fromkeys(report.created, 0)
    assert report.existing == {
        "merged_attributes": 1,
        "original_attributes": 2,
        "merged_from_links": 2,
        "evidence_links": 3,
    }


def test_shared_original_is_stored_once_per_subject(imported_study: Study, write_file: WriteFile) -> None:
    line = subject_line()
    line["merged_attributes"].append({"attribute": "Likes Italian food", "original_attributes": ["Cooks lasagna"]})
    report = attributes_import(study=imported_study, path=write_file("a.jsonl", [line]))
    assert report.created["original_attributes"] == 2
    assert report.created["merged_from_links"] == 3
    assert Attribute.objects.filter(text="Cooks lasagna").count() == 1


def test_unknown_user_id_is_an_error(imported_study: Study, write_file: WriteFile) -> None:
    error = rejected(imported_study, write_file("a.jsonl", [subject_line(), subject_line("ip-zzz")]))
    assert error.errors == [
        "a.jsonl:2: user_id: no subject 'ip-zzz' in study 'Test study' (import its conversations first)"
    ]


def test_ambiguous_user_id_needs_a_source(imported_study: Study, write_file: WriteFile) -> None:
    Subject.objects.create(study=imported_study, external_id="ip-a", source="other")
    error = rejected(imported_study, write_file("a.jsonl", [subject_line()]))
    assert error.errors == [
        "a.jsonl:1: user_id: subject 'ip-a' exists under several sources (other, wildchat): add a 'source' field"
    ]
    report = attributes_import(
        study=imported_study, path=write_file("b.jsonl", [{**subject_line(), "source": "wildchat"}])
    )
    assert report.created["merged_attributes"] == 1


def test_evidence_to_a_missing_turn_names_line_and_field(imported_study: Study, write_file: WriteFile) -> None:
    conversations_import(
        study=imported_study, path=write_file("c.jsonl", [wildchat_line("h-9", "ip-c", [("user", "a")])])
    )
    lines = [
        subject_line("ip-b", evidence=[{"conversation_hash": "h-3", "turn_index": 9}], original_attributes=[]),
        subject_line(evidence=[{"conversation_hash": "h-3", "turn_index": 0}]),
        subject_line("ip-c", evidence=[{"conversation_index": 4, "turn_index": 0}], original_attributes=[]),
    ]
    error = rejected(imported_study, write_file("ev.jsonl", lines))
    assert error.errors == [
        "ev.jsonl:1: merged_attributes[0].evidence[0].turn_index: the conversation has 3 turns, "
        "no turn 9 (indexes start at 0)",
        "ev.jsonl:2: merged_attributes[0].evidence[0].conversation_hash: subject 'ip-a' has no conversation 'h-3'",
        "ev.jsonl:3: merged_attributes[0].evidence[0].conversation_index: subject 'ip-c' has 1 conversations, "
        "no conversation 4 (indexes start at 0)",
    ]


def test_missing_fields_are_reported(imported_study: Study, write_file: WriteFile) -> None:
    lines = [
        {"merged_attributes": []},
        {"user_id": "ip-a"},
        {"user_id": "ip-b", "merged_attributes": [{"reason": "no text"}]},
        subject_line(evidence=[{"conversation_hash": "h-1"}]),
        subject_line(evidence=[{"turn_index": 0}]),
    ]
    error = rejected(imported_study, write_file("m.jsonl", lines))
    assert error.errors == [
        "m.jsonl:1: user_id: missing required field",
        "m.jsonl:2: merged_attributes: missing required field",
        "m.jsonl:3: merged_attributes[0].attribute: missing required field",
        "m.jsonl:4: merged_attributes[0].evidence[0].turn_index: missing required field",
        "m.jsonl:5: merged_attributes[0].evidence[0].conversation_hash: "
        "missing ('conversation_hash' or 'conversation_index')",
    ]


def test_wrong_types_and_ranges_are_reported(imported_study: Study, write_file: WriteFile) -> None:
    lines = [
        {"user_id": "ip-a", "merged_attributes": {"attribute": "x"}},
        subject_line(confidence=1.5),
        subject_line(confidence="very"),
        subject_line(confidence=True),
        subject_line(original_attributes=[42]),
        subject_line(evidence=[{"conversation_index": "one", "turn_index": 0}]),
        {"user_id": None, "merged_attributes": []},
    ]
    error = rejected(imported_study, write_file("t.jsonl", lines))
    assert error.errors == [
        "t.jsonl:1: merged_attributes: expected a list, got an object",
        "t.jsonl:2: merged_attributes[0].confidence: must be between 0 and 1, got 1.5",
        "t.jsonl:3: merged_attributes[0].confidence: expected a number from 0 to 1 or high/medium/low, got 'very'",
        "t.jsonl:4: merged_attributes[0].confidence: expected a number from 0 to 1 or high/medium/low, got a boolean",
        "t.jsonl:5: merged_attributes[0].original_attributes[0]: expected an object, got a number",
        "t.jsonl:6: merged_attributes[0].evidence[0].conversation_index: expected a whole number, got a string",
        "t.jsonl:7: user_id: expected a string, got null",
    ]


def test_malformed_json_and_non_utf8_are_reported(imported_study: Study, write_file: WriteFile) -> None:
    error = rejected(imported_study, write_file("j.jsonl", [subject_line(), "{not json", b'{"user_id": "\xff"}']))
    assert error.errors[0].startswith("j.jsonl:2: (json): malformed JSON: ")
    assert error.errors[1] == "j.jsonl:3: (encoding): not valid UTF-8 (byte 0xff at byte 14 of the line)"


def test_duplicate_user_id_and_duplicate_attribute_are_reported(imported_study: Study, write_file: WriteFile) -> None:
    twice = subject_line("ip-b", original_attributes=[], evidence=[])
    twice["merged_attributes"].append({"attribute": "Is vegetarian"})
    error = rejected(imported_study, write_file("d.jsonl", [subject_line(), subject_line(), twice]))
    assert error.errors == [
        "d.jsonl:2: user_id: duplicate user_id 'ip-a' (first on line 1)",
        "d.jsonl:3: merged_attributes[1].attribute: duplicate attribute 'Is vegetarian' (also merged_attributes[0])",
    ]


def test_same_subject_with_and_without_source_is_a_duplicate(imported_study: Study, write_file: WriteFile) -> None:
    error = rejected(imported_study, write_file("d.jsonl", [subject_line(), {**subject_line(), "source": "wildchat"}]))
    assert error.errors == ["d.jsonl:2: user_id: duplicate user_id 'ip-a' (first on line 1)"]


def test_empty_file_is_reported(imported_study: Study, write_file: WriteFile) -> None:
    error = rejected(imported_study, write_file("empty.jsonl", []))
    assert error.errors == ["empty.jsonl:1: (file): the file is empty: it has no records"]


def test_subject_of_another_study_is_unknown(imported_study: Study, write_file: WriteFile, wildchat_file: Path) -> None:
    other = Study.objects.create(name="Other")
    error = rejected(other, write_file("a.jsonl", [subject_line()]))
    assert error.errors[0].startswith("a.jsonl:1: user_id: no subject 'ip-a' in study 'Other'")
    conversations_import(study=other, path=wildchat_file)
    attributes_import(study=other, path=write_file("a.jsonl", [subject_line()]))
    assert Attribute.objects.filter(subject__study=other).count() == 3
    assert Attribute.objects.filter(subject__study=imported_study).count() == 0
