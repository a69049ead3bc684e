"""annotate.receivers: a finished generate run turns its responses into stage-3 work at once."""

from __future__ import annotations

import pytest

from annotate.models import Item
from personalization.models import ModelRun, Response, Study
from personalization.services import model_run_create, model_run_execute

pytestmark = pytest.mark.django_db(transaction=True)


def test_finished_generate_run_builds_stage3_items(small_study: Study, scripted) -> None:
    scripted(lambda chat: "A helpful answer.")
    assert not Item.objects.filter(study=small_study, stage=3).exists()

    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    model_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == ModelRun.Status.DONE
    pairs_with_both = {r.pair_id for r in Response.objects.filter(model_run=run, mode=Response.Mode.ALL_ATTRIBUTES)} & {
        r.pair_id for r in Response.objects.filter(model_run=run, mode=Response.Mode.GENERIC)
    }
    items = Item.objects.filter(study=small_study, stage=3)
    assert set(items.values_list("pair_id", flat=True)) == pairs_with_both
    assert all(item.generic_response_id and item.personalized_response_id for item in items)


def test_other_steps_build_no_stage3_items(small_study: Study, scripted) -> None:
    scripted(lambda chat: '[{"attribute": "Likes tea", "reason": "said so", "confidence": 0.8, "evidence_turns": [0]}]')
    run = model_run_create(study=small_study, step="extract", model_name="scripted")
    model_run_execute(run_id=run.pk)
    assert not Item.objects.filter(study=small_study, stage=3).exists()
