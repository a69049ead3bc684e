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
        "mine_done": 0,
        "mine_available": 0,
    }
    mine = study_progress(study=study, stage=1, annotator=annotator)
    assert (mine["mine_done"], mine["mine_available"]) == (1, 1)
    assert len(items) == 3
