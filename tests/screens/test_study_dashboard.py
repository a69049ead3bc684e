from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotate.dashboard import dashboard_annotators, dashboard_flags, dashboard_stages
from annotate.services import assignment_next, assignment_submit
from personalization.models import Study
from tests.screens.builders import add_annotators


def _judge_stage_1(study: Study, user: User, *, answer: str, flag: bool = False, note: str = "") -> None:
    assignment = assignment_next(study=study, stage=1, annotator=user)
    attribute_ids = assignment.item.attributes.values_list("id", flat=True)
    assignment_submit(
        assignment=assignment, answers=dict.fromkeys(attribute_ids, answer), flag=flag, note=note, active_ms=6000
    )


def test_numbers_per_stage_per_annotator_and_flags(annotator: User, populated: Study) -> None:
    others = add_annotators(populated, 2)
    _judge_stage_1(populated, annotator, answer="makes_sense", flag=True, note="graphic content")
    for user in others:
        _judge_stage_1(populated, user, answer="makes_sense")
    assignment_next(study=populated, stage=1, annotator=others[0])  # a second item in progress

    stages = {row["number"]: row for row in dashboard_stages(study=populated)}
    # The first subject's item has its k = 3 judgments; the second is held by one annotator.
    assert stages[1]["progress"]["items_total"] == 2
    assert stages[1]["progress"]["items_done"] == 1
    assert stages[1]["progress"]["items_in_progress"] == 1
    assert stages[1]["progress"]["items_waiting"] == 0
    assert stages[1]["percent_done"] == 50
    assert stages[2]["progress"]["items_waiting"] == 2
    # Everyone agreed on every attribute: raw agreement 1, kappa undefined (one answer only).
    assert stages[1]["agreement"].units == 3
    assert stages[1]["agreement"].percent_agreement == 1.0
    assert stages[1]["agreement"].fleiss_kappa is None

    rows = {row["user"].username: row for row in dashboard_annotators(study=populated)}
    assert rows["annotator"]["stages"][0]["items"] == 1
    assert rows["annotator"]["total_judgments"] == 3
    assert rows["annotator"]["total_flags"] == 1
    assert rows["annotator"]["seconds_per_item"] == 6.0
    assert rows["annotator-0"]["total_flags"] == 0
    assert "owner" not in rows

    flags = dashboard_flags(study=populated)
    assert flags["total"] == 1
    (flag,) = flags["rows"]
    assert (flag["stage"], flag["annotator"], flag["note"]) == (1, "annotator", "graphic content")
    assert flag["url"].startswith("/admin/judgments/")


def test_page_shows_the_numbers_to_the_owner(owner_client: Client, annotator: User, populated: Study) -> None:
    _judge_stage_1(populated, annotator, answer="maybe", flag=True, note="<b>not bold</b>")
    response = owner_client.get(f"/studies/{populated.pk}/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'Flags raised <span class="muted">(1)</span>' in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert ">annotator</a>" in html  # links to the annotator's judgments in the admin
    assert "annotator__id__exact" in html


def test_annotators_and_outsiders_get_404(annotator_client: Client, outsider_client: Client, populated: Study) -> None:
    assert annotator_client.get(f"/studies/{populated.pk}/dashboard/").status_code == 404
    assert outsider_client.get(f"/studies/{populated.pk}/dashboard/").status_code == 404


def test_page_query_count_does_not_grow_with_annotators_or_flags(owner_client: Client, populated: Study) -> None:
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(f"/studies/{populated.pk}/dashboard/").status_code == 200
        return len(queries)

    first = add_annotators(populated, 3)
    for user in first:
        _judge_stage_1(populated, user, answer="maybe", flag=True)
    few = page_queries()
    more = [User.objects.create_user(f"late-{i}") for i in range(6)]
    populated.annotators.add(*more)
    for user in more[:3]:
        _judge_stage_1(populated, user, answer="makes_sense", flag=True)
    assert page_queries() == few
