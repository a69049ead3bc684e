"""Step "extract": attributes with evidence from each conversation; malformed output recorded as failures."""

from __future__ import annotations

import json

from personalization.models import Attribute, ModelRun, ModelRunItem, Study
from personalization.pipeline.common import ATTEMPT_SEPARATOR
from personalization.services import model_run_create, model_run_execute
from tests.pipeline.conftest import GOOD_EXTRACTION


def test_extract_plans_one_item_per_conversation_and_records_provenance(small_study: Study, tiny_model) -> None:
    run = model_run_create(study=small_study, step="extract", model_name="tiny", seed=7)
    assert run.total_count == 4
    assert sorted(run.items.values_list("input_key", flat=True)) == sorted(
        f"conv:{pk}" for pk in small_study.subjects.values_list("conversations__id", flat=True)
    )
    assert (run.model_name, run.backend, run.revision, run.seed) == ("tiny", "hf_local", "tiny-test-model", 7)
    assert run.template_name == "extract_attributes.v2+repair_json.v1"
    assert len(run.template_hash) == 64


def test_extract_with_the_tiny_random_model_records_failures_with_raw_text(small_study: Study, tiny_model) -> None:
    run = model_run_create(study=small_study, step="extract", model_name="tiny", params={"max_new_tokens": 8})
    outcome = model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert outcome.status == "finished"
    assert run.status == ModelRun.Status.DONE
    assert run.done_count + run.failed_count == run.total_count == 4
    assert run.generated_tokens > 0
    for item in run.items.all():
        assert item.status in (ModelRunItem.Status.DONE, ModelRunItem.Status.FAILED)
        if item.status == ModelRunItem.Status.FAILED:
            # One first attempt and two repair attempts, every raw text kept.
            assert item.attempts == 3
            assert item.raw_output.count("----- repair attempt") == 2
            assert "malformed output after 3 attempt(s)" in item.error


def test_extract_success_path_writes_original_attributes_with_evidence(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "Sure! ```json\n" + GOOD_EXTRACTION + "\n``` Hope this helps.")
    run = model_run_create(study=small_study, step="extract", model_name="scripted", params={"batch_size": 3})
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.done_count, run.failed_count, run.status) == (4, 0, ModelRun.Status.DONE)
    assert backend.generate_calls == [3, 1]  # batched
    originals = Attribute.objects.filter(model_run=run, level=Attribute.Level.ORIGINAL)
    # The same sentence from two conversations of a subject is one attribute with both as evidence.
    assert originals.count() == 4
    vegetarian = originals.filter(text="The user is vegetarian").first()
    assert vegetarian.origin == Attribute.Origin.MODEL
    assert vegetarian.confidence == 0.9
    assert vegetarian.evidence_turns.count() == 2
    assert all(turn.index == 0 for turn in vegetarian.evidence_turns.all())
    shifts = originals.filter(text="The user works night shifts").first()
    assert {e["turn_index"] for e in shifts.metadata["unresolved_evidence_turns"]} == {7}


def test_extract_repairs_bad_json_then_succeeds(small_study: Study, scripted) -> None:
    def reply(chat: list[dict[str, str]]) -> str:
        return GOOD_EXTRACTION if "fix broken JSON" in chat[0]["content"] else '[{"attribute": "The user is'

    scripted(reply)
    run = model_run_create(study=small_study, step="extract", model_name="scripted")
    model_run_execute(run_id=run.pk)
    item = run.items.first()
    item.refresh_from_db()
    assert item.status == ModelRunItem.Status.DONE
    assert item.attempts == 2
    assert ATTEMPT_SEPARATOR.format(n=1) in item.raw_output


def test_extract_gives_up_after_bounded_repairs_and_stores_nothing(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "I cannot answer that.")
    run = model_run_create(study=small_study, step="extract", model_name="scripted", params={"max_repairs": 1})
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.done_count, run.failed_count) == (0, 4)
    assert backend.generate_calls == [4, 4]
    assert not Attribute.objects.filter(model_run=run).exists()
    item = run.items.first()
    assert item.raw_output.startswith("I cannot answer that.")
    assert "no JSON list or object found" in item.error


def test_extract_confidence_out_of_range_is_a_failure_not_a_clamp(small_study: Study, scripted) -> None:
    scripted(lambda chat: json.dumps([{"attribute": "The user is tall", "confidence": 7}]))
    run = model_run_create(study=small_study, step="extract", model_name="scripted", params={"max_repairs": 0})
    model_run_execute(run_id=run.pk)
    item = run.items.first()
    assert item.status == ModelRunItem.Status.FAILED
    assert "item 0.confidence: 7.0 is outside 0..1" in item.error


def test_extraction_shows_the_model_only_what_the_user_said(small_study: Study, scripted) -> None:
    seen: list[str] = []

    def reply(chat: list[dict[str, str]]) -> str:
        seen.append(chat[-1]["content"])
        return "[]"

    scripted(reply)
    run = model_run_create(study=small_study, step="extract", model_name="scripted")
    model_run_execute(run_id=run.pk)
    assert len(seen) == 4
    for text in seen:
        assert "[0] I am a vegetarian nurse on night shifts." in text
        assert "lentil stew" not in text and "assistant:" not in text
