"""The annotation REST API: every endpoint, its access rules and its query counts."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotate.models import Assignment, Item
from annotate.services import assignment_next, items_build
from judgments.models import Judgment
from tests.annotate.conftest import make_subject
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def _next_url(study_id: int, stage: int = 1) -> str:
    return reverse("api-assignment-next", kwargs={"study_id": study_id, "stage": stage})


def _url(name: str, assignment_id: int) -> str:
    return reverse(name, kwargs={"assignment_id": assignment_id})


def _answers(payload: dict, answer: str = "maybe") -> dict[str, str]:
    return {str(a["id"]): answer for a in payload["attributes"]}


def test_next_submit_and_preloaded_next(study, annotator_client, stage1_items) -> None:
    stage1_items(2)
    payload = annotator_client.get(_next_url(study.pk)).json()
    assert payload["stage"] == 1 and payload["status"] == "leased"
    response = annotator_client.post(
        _url("api-assignment-submit", payload["assignment_id"]),
        {"answers": _answers(payload), "note": "fine", "active_ms": 900},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["next"]["assignment_id"] != payload["assignment_id"]
    assert Judgment.objects.filter(annotator__username="annotator").count() == len(payload["attributes"])
    last = annotator_client.post(
        _url("api-assignment-submit", body["next"]["assignment_id"]),
        {"answers": _answers(body["next"])},
        content_type="application/json",
    ).json()
    assert last["next"] is None
    assert annotator_client.get(_next_url(study.pk)).status_code == 204


def test_stage_progress_for_members_only(study, annotator_client, outsider_client, annotator, stage1_items) -> None:
    stage1_items(2, k=1)
    url = reverse("api-stage-progress", args=[study.pk, 1])
    payload = annotator_client.get(_next_url(study.pk)).json()
    annotator_client.post(
        _url("api-assignment-submit", payload["assignment_id"]),
        {"answers": _answers(payload)},
        content_type="application/json",
    )
    progress = annotator_client.get(url).json()
    assert (progress["items_total"], progress["items_done"], progress["items_in_progress"]) == (2, 1, 1)
    assert (progress["mine_done"], progress["mine_available"]) == (1, 0)
    assert outsider_client.get(url).status_code == 404
    assert annotator_client.get(reverse("api-stage-progress", args=[study.pk, 7])).status_code == 400


def test_an_owner_who_stopped_annotating_can_submit_but_gets_no_new_work(study, annotator, stage1_items) -> None:
    stage1_items(2)
    client = Client()
    client.force_login(annotator)
    payload = client.get(_next_url(study.pk)).json()
    study.annotators.remove(annotator)
    study.owners.add(annotator)
    response = client.post(
        _url("api-assignment-submit", payload["assignment_id"]),
        {"answers": _answers(payload)},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["next"] is None
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_post_next_works_like_get(study, annotator_client, stage1_items) -> None:
    stage1_items(1)
    assert annotator_client.post(_next_url(study.pk)).status_code == 200


def test_bad_submissions_get_a_clear_400_and_store_nothing(study, annotator_client, stage1_items) -> None:
    stage1_items(1)
    payload = annotator_client.get(_next_url(study.pk)).json()
    url = _url("api-assignment-submit", payload["assignment_id"])
    response = annotator_client.post(url, {"answers": {}}, content_type="application/json")
    assert response.status_code == 400
    assert "have no answer" in response.json()["detail"][0]
    response = annotator_client.post(url, {"answers": "nope"}, content_type="application/json")
    assert response.status_code == 400 and "answers" in response.json()
    response = annotator_client.post(
        url, {"answers": _answers(payload), "active_ms": -1}, content_type="application/json"
    )
    assert response.status_code == 400 and "active_ms" in response.json()
    assert not Judgment.objects.exists()


def test_bad_stage_is_a_400(study, annotator_client) -> None:
    response = annotator_client.get(_next_url(study.pk, stage=7))
    assert response.status_code == 400
    assert "stage: 7 is not a stage" in response.json()["detail"][0]


def test_skip_returns_the_next_item(study, annotator_client, stage1_items) -> None:
    stage1_items(2)
    payload = annotator_client.get(_next_url(study.pk)).json()
    body = annotator_client.post(
        _url("api-assignment-skip", payload["assignment_id"]), {"reason": "too long"}, content_type="application/json"
    ).json()
    assert body["next"]["item_id"] != payload["item_id"]
    assert Assignment.objects.get(pk=payload["assignment_id"]).skip_reason == "too long"


def test_heartbeat_and_draft(study, annotator_client, stage1_items) -> None:
    stage1_items(1)
    payload = annotator_client.get(_next_url(study.pk)).json()
    response = annotator_client.post(_url("api-assignment-heartbeat", payload["assignment_id"]))
    assert response.status_code == 200 and response.json()["lease_expires_at"]
    response = annotator_client.post(
        _url("api-assignment-draft", payload["assignment_id"]),
        {"draft": {"answers": {"1": "maybe"}}},
        content_type="application/json",
    )
    assert response.status_code == 204
    again = annotator_client.get(_url("api-assignment", payload["assignment_id"])).json()
    assert again["draft"] == {"answers": {"1": "maybe"}}


def test_detail_of_a_submitted_assignment_carries_existing_answers(study, annotator_client, stage1_items) -> None:
    stage1_items(1)
    payload = annotator_client.get(_next_url(study.pk)).json()
    annotator_client.post(
        _url("api-assignment-submit", payload["assignment_id"]),
        {"answers": _answers(payload, "makes_sense")},
        content_type="application/json",
    )
    detail = annotator_client.get(_url("api-assignment", payload["assignment_id"])).json()
    assert detail["status"] == "submitted"
    assert detail["existing"] == _answers(payload, "makes_sense")


def test_my_judgments_lists_only_mine(study, annotator, annotators, annotator_client, stage1_items) -> None:
    stage1_items(2)
    payload = annotator_client.get(_next_url(study.pk)).json()
    annotator_client.post(
        _url("api-assignment-submit", payload["assignment_id"]),
        {"answers": _answers(payload)},
        content_type="application/json",
    )
    other = assignment_next(study=study, stage=1, annotator=annotators[0])
    assert other is not None
    body = annotator_client.get(reverse("api-my-judgments", kwargs={"study_id": study.pk})).json()
    assert body["count"] == 1
    assert body["results"][0]["assignment_id"] == payload["assignment_id"]


def test_token_auth_works(study, annotator, stage1_items) -> None:
    stage1_items(1)
    token = Token.objects.create(user=annotator)
    response = Client().get(_next_url(study.pk), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_anonymous_users_get_401_or_403(study, annotator, anon_client, stage1_items) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    urls = [
        ("get", _next_url(study.pk)),
        ("get", reverse("api-my-judgments", kwargs={"study_id": study.pk})),
        ("get", _url("api-assignment", assignment.pk)),
        ("post", _url("api-assignment-submit", assignment.pk)),
        ("post", _url("api-assignment-skip", assignment.pk)),
        ("post", _url("api-assignment-heartbeat", assignment.pk)),
        ("post", _url("api-assignment-draft", assignment.pk)),
    ]
    for method, url in urls:
        assert getattr(anon_client, method)(url).status_code in (401, 403), url
    assert Assignment.objects.get(pk=assignment.pk).status == "leased"


def test_outsiders_and_other_annotators_get_404_and_change_nothing(
    study, annotator, annotators, outsider_client, stage1_items
) -> None:
    (item,) = stage1_items(1)
    theirs = assignment_next(study=study, stage=1, annotator=annotators[0])
    other_client = Client()
    other_client.force_login(annotator)
    answers = {str(a.pk): "maybe" for a in item.attributes.all()}
    for client in (outsider_client, other_client):
        assert client.get(_url("api-assignment", theirs.pk)).status_code == 404
        for name, body in (
            ("api-assignment-submit", {"answers": answers}),
            ("api-assignment-skip", {}),
            ("api-assignment-heartbeat", {}),
            ("api-assignment-draft", {"draft": {"x": 1}}),
        ):
            assert client.post(_url(name, theirs.pk), body, content_type="application/json").status_code == 404
    assert outsider_client.get(_next_url(study.pk)).status_code == 404
    assert outsider_client.get(reverse("api-my-judgments", kwargs={"study_id": study.pk})).status_code == 404
    # Another study's items are out of reach of this study's annotator.
    assert other_client.get(_next_url(StudyFactory().pk)).status_code == 404
    theirs.refresh_from_db()
    item.refresh_from_db()
    assert (theirs.status, theirs.draft, item.slots_taken, item.done_count) == ("leased", {}, 1, 0)
    assert not Judgment.objects.exists()


def _grow(study, subjects: int) -> None:
    for _ in range(subjects):
        make_subject(study)
    items_build(study=study, stage=1)


def test_next_and_submit_cost_the_same_queries_whatever_the_study_size(study, annotators) -> None:
    counts = []
    for size in (3, 60):
        _grow(study, size - Item.objects.filter(study=study).count())
        client = Client()
        client.force_login(annotators[len(counts)])
        client.get(reverse("home"))  # the session and user lookups are not the engine's queries
        cache.clear()  # each round starts with the study-wide progress counts uncached
        with CaptureQueriesContext(connection) as next_queries:
            payload = client.get(_next_url(study.pk)).json()
        with CaptureQueriesContext(connection) as submit_queries:
            response = client.post(
                _url("api-assignment-submit", payload["assignment_id"]),
                {"answers": _answers(payload)},
                content_type="application/json",
            )
        assert response.status_code == 200 and response.json()["next"] is not None
        counts.append((len(next_queries), len(submit_queries)))
    print("query counts (next, submit):", counts)
    assert counts[0] == counts[1], counts
    next_count, submit_count = counts[0]
    # Budgets, measured: next with a cold cache is 19 (stage config, lease sweep, claim, payload);
    # submit is 21 (judgments, then a preloaded next with the config and sweep mark cached).
    assert next_count <= 20, counts
    assert submit_count <= 23, counts
