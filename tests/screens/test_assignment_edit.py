from __future__ import annotations

import json
import re

from django.contrib.auth.models import User
from django.test import Client

from annotate.models import Assignment
from annotate.services import assignment_next, assignment_submit
from personalization.models import Study
from tests.screens.builders import add_annotators


def _submit_stage_2(study: Study, user: User) -> Assignment:
    assignment = assignment_next(study=study, stage=2, annotator=user)
    answers = {a: "yes" for a in assignment.item.attributes.values_list("id", flat=True)}
    assignment_submit(assignment=assignment, answers=answers)
    return assignment


def _config(html: str) -> dict:
    return json.loads(re.search(r'id="work-config" type="application/json">(.*?)</script>', html, re.S).group(1))


def test_own_submitted_assignment_opens_in_edit_mode(
    annotator_client: Client, annotator: User, populated: Study
) -> None:
    assignment = _submit_stage_2(populated, annotator)
    response = annotator_client.get(f"/assignments/{assignment.pk}/edit/")
    assert response.status_code == 200
    config = _config(response.content.decode())
    assert (config["mode"], config["assignmentId"], config["stage"], config["readOnly"]) == (
        "edit",
        assignment.pk,
        2,
        False,
    )
    assert 'id="skip-button"' not in response.content.decode()


def test_closed_study_opens_read_only(annotator_client: Client, annotator: User, populated: Study) -> None:
    assignment = _submit_stage_2(populated, annotator)
    Study.objects.filter(pk=populated.pk).update(status=Study.Status.CLOSED)
    config = _config(annotator_client.get(f"/assignments/{assignment.pk}/edit/").content.decode())
    assert config["readOnly"] is True


def test_another_annotators_assignment_is_404(annotator_client: Client, populated: Study) -> None:
    (other,) = add_annotators(populated, 1)
    assignment = _submit_stage_2(populated, other)
    assert annotator_client.get(f"/assignments/{assignment.pk}/edit/").status_code == 404


def test_outsider_and_owner_get_404(
    outsider_client: Client, owner_client: Client, annotator: User, populated: Study
) -> None:
    assignment = _submit_stage_2(populated, annotator)
    assert outsider_client.get(f"/assignments/{assignment.pk}/edit/").status_code == 404
    # Owners read judgments on the dashboard; they cannot open an annotator's form.
    assert owner_client.get(f"/assignments/{assignment.pk}/edit/").status_code == 404
