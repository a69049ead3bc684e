"""annotate.selectors.study_progress."""

from __future__ import annotations

import pytest

from annotate.selectors import study_progress
from annotate.services import assignment_next, assignment_submit

pytestmark = pytest.mark.django_db


def test_progress_counts_done_in_progress_waiting_and_mine(study, annotator, annotators, stage1_items) -> None:
    items = stage1_items(3, k=1)
    done = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=done, answers={a.pk: "maybe" for a in done.item.attributes.all()})
    assignment_next(study=study, stage=1, annotator=annotators[0])

    assert study_progress(study=study, stage=1) == {
        "items_total": 3,
        "items_done": 1,
        "items_in_progress": 1,
        "items_waiting": 1,
        "items_withdrawn": 0,
        "mine_done": 0,
        "mine_available": 0,
        "mine_available_capped": False,
    }
    mine = study_progress(study=study, stage=1, annotator=annotator)
    assert (mine["mine_done"], mine["mine_available"]) == (1, 1)
    assert len(items) == 3


def test_cached_progress_keeps_my_counts_exact(study, annotator, stage1_items, settings) -> None:
    from django.core.cache import cache

    from annotate.selectors import study_progress_cached

    cache.clear()
    settings.ATTUNE_PROGRESS_CACHE_SECONDS = 60
    stage1_items(2, k=1)
    before = study_progress_cached(study=study, stage=1, annotator=annotator)
    done = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=done, answers={a.pk: "maybe" for a in done.item.attributes.all()})
    after = study_progress_cached(study=study, stage=1, annotator=annotator)
    assert after["items_done"] == before["items_done"] == 0  # study-wide counts may lag...
    assert (after["mine_done"], after["mine_available"]) == (1, 1)  # ...the annotator's own never do
    settings.ATTUNE_PROGRESS_CACHE_SECONDS = 0
    assert study_progress_cached(study=study, stage=1, annotator=annotator)["items_done"] == 1
    cache.clear()
