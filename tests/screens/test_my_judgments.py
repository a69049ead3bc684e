from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from annotate.services import assignment_next, assignment_submit
from personalization.models import Study
from tests.screens.builders import add_annotators


def _submit(study: Study, user: User, stage: int) -> int:
    assignment = assignment_next(study=study, stage=stage, annotator=user)
    answer = {1: "maybe", 2: "no", 3: "3"}[stage]
    assignment_submit(
        assignment=assignment, answers={a: answer for a in assignment.item.attributes.values_list("id", flat=True)}
    )
    return assignment.pk


def test_lists_my_submitted_items_with_edit_links(annotator_client: Client, annotator: User, populated: Study) -> None:
    mine = [_submit(populated, annotator, stage) for stage in (1, 2, 3)]
    (other,) = add_annotators(populated, 1)
    theirs = _submit(populated, other, 2)
    leased = assignment_next(study=populated, stage=1, annotator=annotator)

    response = annotator_client.get(f"/studies/{populated.pk}/mine/")
    assert response.status_code == 200
    html = response.content.decode()
    for pk in mine:
        assert f"/assignments/{pk}/edit/" in html
    assert f"/assignments/{theirs}/edit/" not in html
    assert f"/assignments/{leased.pk}/edit/" not in html
    assert "3 submitted items" in html
    # Prompt text is escaped, never rendered as markup.
    assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;" in html


def test_empty_list(annotator_client: Client, populated: Study) -> None:
    assert "You have not submitted anything" in annotator_client.get(f"/studies/{populated.pk}/mine/").content.decode()


def test_outsider_gets_404(outsider_client: Client, populated: Study) -> None:
    assert outsider_client.get(f"/studies/{populated.pk}/mine/").status_code == 404
