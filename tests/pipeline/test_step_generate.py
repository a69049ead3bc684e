"""Step "generate": generic and personalized responses per pair, with the attributes they used."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from personalization.models import Attribute, ModelRun, ModelRunItem, Response, Study
from personalization.services import model_run_create, model_run_execute
from tests.factories import ModelRunFactory


def test_generate_with_the_tiny_model_writes_responses_per_pair_and_mode(small_study: Study, tiny_model) -> None:
    run = model_run_create(study=small_study, step="generate", model_name="tiny", params={"max_new_tokens": 6})
    assert run.total_count == 8  # 4 pairs x (generic, all_attributes)
    assert run.template_name == "generate_generic.v1+generate_personalized.v1"
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ModelRun.Status.DONE
    assert run.done_count + run.failed_count == 8
    responses = Response.objects.filter(model_run=run)
    assert responses.count() == run.done_count
    for response in responses:
        if response.mode == Response.Mode.ALL_ATTRIBUTES:
            assert set(response.conditioned_on.values_list("subject_id", flat=True)) == {response.pair.subject_id}
            assert response.conditioned_on.count() == 2
        else:
            assert response.conditioned_on.count() == 0
        assert response.metadata["template_sha256"]
    for item in run.items.filter(status=ModelRunItem.Status.FAILED):
        assert item.error == "the model produced no text"


def test_generate_personalized_prompt_lists_the_attributes(small_study: Study, scripted) -> None:
    seen: list[str] = []

    def reply(chat: list[dict[str, str]]) -> str:
        seen.append(chat[-1]["content"])
        return "Here is a dinner idea."

    backend = scripted(reply)
    run = model_run_create(study=small_study, step="generate", model_name="scripted", params={"batch_size": 8})
    model_run_execute(run_id=run.pk)
    assert backend.generate_calls == [8]
    assert any("- Is vegetarian (0)" in text and "My request:" in text for text in seen)
    assert Response.objects.filter(model_run=run).count() == 8


def test_selected_mode_uses_the_relevance_runs_yes_answers(small_study: Study, scripted) -> None:
    scripted(lambda chat: "An answer.")
    relevance = ModelRunFactory(study=small_study, step=ModelRun.Step.RELEVANCE, status=ModelRun.Status.DONE)
    pair = small_study.subjects.order_by("id").first().pairs.order_by("id").first()
    chosen = Attribute.objects.filter(subject=pair.subject).order_by("id").first()
    ModelRunItem.objects.create(
        run=relevance,
        input_key=f"prompt:{pair.prompt_id}:attr:{chosen.pk}",
        status="done",
        raw_output=json.dumps({"answer": "yes"}),
    )
    run = model_run_create(
        study=small_study, step="generate", model_name="scripted", params={"modes": ["selected_attributes"]}
    )
    assert run.params["relevance_run_id"] == relevance.pk
    # Only the pair whose prompt has a YES attribute of its own subject gets a selected response.
    assert list(run.items.values_list("input_key", flat=True)) == [f"pair:{pair.pk}:mode:selected_attributes"]
    model_run_execute(run_id=run.pk)
    response = Response.objects.get(model_run=run)
    assert list(response.conditioned_on.all()) == [chosen]


def test_human_relevant_mode_needs_the_humans_choices(small_study: Study) -> None:
    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="generate", params={"modes": ["human_relevant_attributes"]})
    assert "params.human_relevant" in error.value.message_dict


def test_unknown_mode_and_parameter_are_named(small_study: Study) -> None:
    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="generate", params={"modes": ["poetic"]})
    assert "params.modes" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="generate", params={"temprature": 0.3})
    assert "params.temprature" in error.value.message_dict


def test_empty_model_output_is_a_failure_not_a_response(small_study: Study, scripted) -> None:
    scripted(lambda chat: "   ")
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.done_count, run.failed_count) == (0, 8)
    assert not Response.objects.filter(model_run=run).exists()


def test_nul_characters_from_a_broken_model_are_stored_visibly(small_study: Study, scripted) -> None:
    scripted(lambda chat: "half\x00answer")
    run = model_run_create(study=small_study, step="generate", model_name="scripted", params={"modes": ["generic"]})
    model_run_execute(run_id=run.pk)
    assert set(Response.objects.filter(model_run=run).values_list("text", flat=True)) == {"half\ufffdanswer"}
    assert run.items.first().raw_output == "half\ufffdanswer"
