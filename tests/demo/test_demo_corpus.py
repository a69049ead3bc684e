"""The demo corpus files: they pass the real importers, and they have the shape the demo promises
(about a dozen subjects with several multi-turn conversations, long answers to collapse, attributes
citing real user turns, a few over-generalized attributes, everyday prompts)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from personalization.demo import seed
from personalization.importers import attributes_import, conversations_import, prompts_import
from personalization.models import Attribute, Conversation, Prompt, Study, Subject, Turn

# An assistant turn this long is several paragraphs: the annotation screen collapses it.
LONG_TURN_CHARS = 900


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_corpus_files_import_without_errors_into_a_fresh_study(study: Study) -> None:
    wildchat = conversations_import(study=study, path=seed.WILDCHAT_FILE, source=seed.WILDCHAT_SOURCE)
    synthetic = conversations_import(
        study=study, path=seed.SYNTHETIC_FILE, source=seed.SYNTHETIC_SOURCE, is_synthetic=True
    )
    attributes = attributes_import(study=study, path=seed.ATTRIBUTES_FILE)
    prompts = prompts_import(study=study, path=seed.PROMPTS_FILE)

    assert wildchat.created["subjects"] == 9
    assert synthetic.created["subjects"] == 3
    assert wildchat.created["conversations"] + synthetic.created["conversations"] == Conversation.objects.count()
    assert attributes.lines == 12
    assert prompts.created["prompts"] == Prompt.objects.filter(study=study).count() >= 15
    assert set(Subject.objects.filter(is_synthetic=True).values_list("source", flat=True)) == {seed.SYNTHETIC_SOURCE}
    assert set(Subject.objects.filter(is_synthetic=False).values_list("source", flat=True)) == {seed.WILDCHAT_SOURCE}


def test_wildchat_file_is_in_wildchat_form_and_synthetic_file_in_openai_form() -> None:
    for record in read_jsonl(seed.WILDCHAT_FILE):
        assert {"conversation_hash", "model", "timestamp", "hashed_ip", "conversation"} <= record.keys()
        assert "messages" not in record
    for record in read_jsonl(seed.SYNTHETIC_FILE):
        assert {"user", "messages"} <= record.keys()
        assert "conversation" not in record


def test_every_subject_has_three_or_four_conversations_of_two_to_six_turns() -> None:
    per_subject = Counter(r["hashed_ip"] for r in read_jsonl(seed.WILDCHAT_FILE))
    per_subject.update(r["user"] for r in read_jsonl(seed.SYNTHETIC_FILE))
    assert len(per_subject) == 12
    assert all(3 <= n <= 4 for n in per_subject.values()), per_subject
    turn_lists = [r["conversation"] for r in read_jsonl(seed.WILDCHAT_FILE)]
    turn_lists += [r["messages"] for r in read_jsonl(seed.SYNTHETIC_FILE)]
    for turns in turn_lists:
        assert 2 <= len(turns) <= 6
        assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)


def test_some_assistant_turns_are_long_enough_to_collapse() -> None:
    turn_lists = [r["conversation"] for r in read_jsonl(seed.WILDCHAT_FILE)]
    turn_lists += [r["messages"] for r in read_jsonl(seed.SYNTHETIC_FILE)]
    long_turns = [
        t for turns in turn_lists for t in turns if t["role"] == "assistant" and len(t["content"]) > LONG_TURN_CHARS
    ]
    assert len(long_turns) >= 10


def test_every_merged_attribute_has_reason_confidence_originals_and_evidence_on_user_turns(demo: seed.DemoSeed) -> None:
    subjects = Subject.objects.filter(study=demo.study)
    for subject in subjects:
        merged = Attribute.objects.filter(subject=subject, level=Attribute.Level.MERGED)
        assert 3 <= merged.count() <= 6, subject
        for attribute in merged:
            assert attribute.reason
            assert attribute.confidence is not None and 0 <= attribute.confidence <= 1
            assert 1 <= attribute.merged_from.count() <= 3, attribute
            evidence = list(attribute.evidence_turns.select_related("conversation"))
            assert evidence, attribute
            for turn in evidence:
                assert turn.conversation.subject_id == subject.pk
                assert turn.role == Turn.Role.USER


@pytest.mark.parametrize(
    ("attribute_text", "subject_source"),
    [("Is a professional chef", seed.WILDCHAT_SOURCE), ("Works in the beer industry", seed.SYNTHETIC_SOURCE)],
)
def test_corpus_includes_over_generalized_attributes_with_low_confidence(
    demo: seed.DemoSeed, attribute_text: str, subject_source: str
) -> None:
    attribute = Attribute.objects.get(subject__study=demo.study, text=attribute_text)
    assert attribute.subject.source == subject_source
    assert attribute.confidence is not None and attribute.confidence < 0.5
    # Over-generalized from a single mention: one evidence turn.
    assert attribute.evidence_turns.count() == 1


def test_prompts_are_everyday_requests_with_unique_demo_source_ids() -> None:
    records = read_jsonl(seed.PROMPTS_FILE)
    assert 12 <= len(records) <= 20
    assert {r["source"] for r in records} == {seed.PROMPT_SOURCE}
    assert len({r["source_id"] for r in records}) == len(records)
    assert len({r["text"] for r in records}) == len(records)
