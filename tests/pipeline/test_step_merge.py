"""Step "merge": a subject's extracted attributes clustered by embedding similarity (real MiniLM)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from personalization.models import Attribute, ModelRun, Study
from personalization.pipeline.merge import clusters_by_similarity
from personalization.services import model_run_create, model_run_execute
from tests.factories import ModelRunFactory


def _extract_run_with(study: Study, texts_by_subject: dict[int, list[tuple[str, str, float]]]) -> ModelRun:
    run = ModelRunFactory(study=study, step=ModelRun.Step.EXTRACT, status=ModelRun.Status.DONE)
    for subject_id, texts in texts_by_subject.items():
        for text, reason, confidence in texts:
            Attribute.objects.create(
                subject_id=subject_id,
                level=Attribute.Level.ORIGINAL,
                origin=Attribute.Origin.MODEL,
                text=text,
                reason=reason,
                confidence=confidence,
                model_run=run,
            )
    return run


def test_clusters_follow_the_similarity_threshold() -> None:
    vectors = [[1.0, 0.0], [0.95, 0.05], [0.0, 1.0]]
    assert clusters_by_similarity(vectors, threshold=0.9) == [[0, 1], [2]] or clusters_by_similarity(
        vectors, threshold=0.9
    ) == [[1, 0], [2]]
    assert clusters_by_similarity(vectors, threshold=0.9999) == [[0], [1], [2]]
    assert clusters_by_similarity([[0.3, 0.4]], threshold=0.7) == [[0]]
    assert clusters_by_similarity([], threshold=0.7) == []


def test_merge_needs_a_finished_extract_run(small_study: Study) -> None:
    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="merge")
    assert "params.extract_run_id" in error.value.message_dict


def test_merge_clusters_similar_originals_and_keeps_them(small_study: Study) -> None:
    first, second = small_study.subjects.order_by("id")
    extract = _extract_run_with(
        small_study,
        {
            first.pk: [
                ("The user is a vegetarian", "no meat", 0.9),
                ("The user follows a vegetarian diet", "asks for veggie food", 0.7),
                ("The user works as a nurse", "mentions the ward", 0.8),
            ],
            second.pk: [("The user plays chess", "asks about openings", 0.6)],
        },
    )
    run = model_run_create(study=small_study, step="merge")
    assert run.params["extract_run_id"] == extract.pk
    assert (run.backend, run.model_name, run.total_count) == ("sentence_transformers", "minilm-l6", 2)
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count, run.failed_count) == (ModelRun.Status.DONE, 2, 0)
    merged = Attribute.objects.filter(model_run=run, level=Attribute.Level.MERGED, subject=first)
    assert merged.count() == 2
    veggie = next(a for a in merged if "vegetarian" in a.text)
    assert {a.text for a in veggie.merged_from.all()} == {
        "The user is a vegetarian",
        "The user follows a vegetarian diet",
    }
    assert veggie.confidence == pytest.approx(0.8)
    assert "no meat" in veggie.reason and "asks for veggie food" in veggie.reason
    assert Attribute.objects.filter(model_run=extract).count() == 4  # originals kept
    assert Attribute.objects.filter(model_run=run, subject=second).get().text == "The user plays chess"


def test_merge_threshold_is_a_run_parameter(small_study: Study) -> None:
    first = small_study.subjects.order_by("id").first()
    _extract_run_with(
        small_study,
        {first.pk: [("The user is a vegetarian", "", 0.9), ("The user follows a vegetarian diet", "", 0.7)]},
    )
    run = model_run_create(study=small_study, step="merge", params={"threshold": 0.999})
    model_run_execute(run_id=run.pk)
    assert Attribute.objects.filter(model_run=run, subject=first).count() == 2
    with pytest.raises(ValidationError) as error:
        model_run_create(study=small_study, step="merge", params={"threshold": 1.5})
    assert "params.threshold" in error.value.message_dict
