"""Model judges: relevance (stage 2), correctness (stage 1) and blind preference (stage 3)."""

from __future__ import annotations

import json
import math

import pytest

from judgments.model_judges import model_judge_run_execute, presentation_side, rating_to_personalized
from judgments.models import Judgment
from personalization.models import ModelRun, ModelRunItem, Response, Study
from personalization.services import model_run_create
from tests.factories import ModelRunFactory


def _responses(study: Study) -> ModelRun:
    """A finished generate run with a generic and an all_attributes response per pair."""
    run = ModelRunFactory(study=study, step=ModelRun.Step.GENERATE, status=ModelRun.Status.DONE)
    for subject in study.subjects.all():
        for pair in subject.pairs.all():
            Response.objects.create(pair=pair, mode="generic", text="Pasta with tomato.", model_run=run)
            personalized = Response.objects.create(
                pair=pair, mode="all_attributes", text="A lentil stew before your night shift.", model_run=run
            )
            personalized.conditioned_on.set(subject.attributes.all())
    return run


def test_relevance_with_the_tiny_model_scores_yes_no_for_every_prompt_attribute(small_study: Study, tiny_model) -> None:
    run = model_run_create(study=small_study, step="relevance", model_name="tiny")
    # 2 prompts x (2 subjects x 2 attributes), each subject paired with both prompts.
    assert run.total_count == 8
    model_judge_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count, run.failed_count) == (ModelRun.Status.DONE, 8, 0)
    judgments = Judgment.objects.filter(model_run=run)
    assert judgments.count() == 8
    for judgment in judgments:
        assert judgment.stage == 2 and judgment.annotator_id is None and judgment.prompt_id
        scores = json.loads(judgment.raw_output)
        assert scores["answer"] == judgment.answer in ("yes", "no")
        assert all(value is None or (math.isfinite(value) and value <= 0) for value in scores["logprobs"].values())
        assert set(scores["logprobs"]) == {"YES", "NO"}


def test_relevance_answer_is_the_likelier_choice(small_study: Study, scripted) -> None:
    backend = scripted(
        lambda chat: "",
        scores=lambda chat, choice: -0.1 if ("Is vegetarian" in chat[-2]["content"]) == ("YES" in choice) else -3.0,
    )
    run = model_run_create(study=small_study, step="relevance", model_name="scripted", params={"calibrate": "none"})
    model_judge_run_execute(run_id=run.pk)
    answers = {(j.attribute.text.split(" (")[0], j.answer) for j in Judgment.objects.filter(model_run=run)}
    assert answers == {("Is vegetarian", "yes"), ("Works night shifts", "no")}
    assert backend.choice_calls == [8]


def test_relevance_is_calibrated_against_the_models_yes_bias(small_study: Study, scripted) -> None:
    """A model that always prefers YES (as small ones do) still separates the attributes: an answer
    counts as YES only when the input raises YES above its content-free ("N/A") baseline."""

    def scores(chat: list[dict[str, str]], choice: str) -> float:
        text = chat[-2]["content"]
        margin = 3.0 if "Is vegetarian" in text else (1.0 if "Works night" in text else 2.0)  # 2.0: "N/A"
        return -0.1 if "YES" in choice else -0.1 - margin

    backend = scripted(lambda chat: "", scores=scores)
    run = model_run_create(study=small_study, step="relevance", model_name="scripted")
    model_judge_run_execute(run_id=run.pk)
    judgments = list(Judgment.objects.filter(model_run=run))
    answers = {(j.attribute.text.split(" (")[0], j.answer) for j in judgments}
    assert answers == {("Is vegetarian", "yes"), ("Works night shifts", "no")}
    assert backend.choice_calls == [8, 1]  # the batch, then the content-free baseline once
    assert json.loads(judgments[0].raw_output)["baseline"] == {"YES": -0.1, "NO": -2.1}


def test_batch_calibration_answers_relative_to_the_batch_mean(small_study: Study, scripted) -> None:
    def scores(chat: list[dict[str, str]], choice: str) -> float:
        margin = 3.0 if "Is vegetarian" in chat[-2]["content"] else 1.0
        return -0.1 if "YES" in choice else -0.1 - margin

    backend = scripted(lambda chat: "", scores=scores)
    run = model_run_create(study=small_study, step="relevance", model_name="scripted", params={"calibrate": "batch"})
    model_judge_run_execute(run_id=run.pk)
    judgments = list(Judgment.objects.filter(model_run=run))
    answers = {(j.attribute.text.split(" (")[0], j.answer) for j in judgments}
    assert answers == {("Is vegetarian", "yes"), ("Works night shifts", "no")}
    assert backend.choice_calls == [8]
    raw = json.loads(judgments[0].raw_output)
    assert raw["calibration"] == "batch" and raw["baseline"]["NO"] == pytest.approx(-2.1)


def test_unknown_calibration_is_named(small_study: Study) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="relevance", params={"calibrate": "magic"})
    assert "params.calibrate" in error.value.message_dict


def test_relevance_embedding_baseline(small_study: Study) -> None:
    run = model_run_create(
        study=small_study, step="relevance", params={"method": "embedding", "embedding_threshold": 0.0}
    )
    assert run.backend == "sentence_transformers" and run.template_name == ""
    model_judge_run_execute(run_id=run.pk)
    judgments = Judgment.objects.filter(model_run=run)
    assert judgments.count() == 8
    assert all("cosine" in json.loads(j.raw_output) for j in judgments)


def test_correctness_judge_per_merged_attribute(small_study: Study, tiny_model) -> None:
    run = model_run_create(study=small_study, step="judge_correctness", model_name="tiny")
    assert run.total_count == 4
    model_judge_run_execute(run_id=run.pk)
    judgments = Judgment.objects.filter(model_run=run)
    assert judgments.count() == 4
    assert {j.answer for j in judgments} <= {"makes_sense", "maybe", "doesnt_make_sense"}
    assert all(j.stage == 1 and j.subject_id == j.attribute.subject_id for j in judgments)


def test_correctness_judge_generate_method_parses_and_records_failures(small_study: Study, scripted) -> None:
    replies = iter(
        ["Label: maybe", "I think it makes sense.", "no idea", "no idea", "no idea", "no idea", "no idea", "no idea"]
    )
    scripted(lambda chat: next(replies, "no idea"))
    run = model_run_create(
        study=small_study,
        step="judge_correctness",
        model_name="scripted",
        params={"method": "generate", "batch_size": 2},
    )
    model_judge_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.template_name == "judge_correctness.v1+repair_json.v1"
    answers = list(Judgment.objects.filter(model_run=run).order_by("id").values_list("answer", flat=True))
    assert answers == ["maybe"]
    failed = run.items.filter(status=ModelRunItem.Status.FAILED)
    assert failed.count() == 3
    assert all("no answer line" in item.error and item.attempts == 3 for item in failed)


def test_preference_judge_uses_a_seeded_blind_side_and_converts_the_rating(small_study: Study, scripted) -> None:
    generate = _responses(small_study)

    def scores(chat: list[dict[str, str]], choice: str) -> float:
        # The model always prefers answer B strongly (5).
        return -0.1 if choice == " 5" else -4.0

    scripted(lambda chat: "", scores=scores)
    run = model_run_create(
        study=small_study, step="judge_preference", model_name="scripted", seed=11, params={"calibrate": "none"}
    )
    assert run.params["generate_run_id"] == generate.pk
    assert run.total_count == 8  # 4 pairs x 2 conditioned attributes
    model_judge_run_execute(run_id=run.pk)
    judgments = Judgment.objects.filter(model_run=run)
    assert judgments.count() == 8
    sides = set()
    for judgment in judgments:
        item = run.items.get(input_key__startswith=f"pair:{judgment.pair_id}:attr:{judgment.attribute_id}:")
        assert judgment.personalized_side == presentation_side(run=run, input_key=item.input_key)
        assert judgment.answer == ("5" if judgment.personalized_side == "B" else "1")
        assert judgment.generic_response.mode == "generic"
        assert judgment.personalized_response.mode == "all_attributes"
        assert json.loads(judgment.raw_output)["rating_b_vs_a"] == 5
        sides.add(judgment.personalized_side)
    assert sides == {"A", "B"}


@pytest.mark.parametrize(("rating", "side", "stored"), [(5, "B", "5"), (5, "A", "1"), (2, "A", "4"), (3, "A", "3")])
def test_rating_is_restated_as_personalized_versus_generic(rating: int, side: str, stored: str) -> None:
    assert rating_to_personalized(rating_b_vs_a=rating, personalized_side=side) == stored
