"""Run control API and pages: owners act, everyone else gets 404 and nothing changes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from personalization.models import ModelRun, Study
from tests.factories import ModelRunFactory


@pytest.fixture
def run(small_study: Study) -> ModelRun:
    return ModelRunFactory(
        study=small_study, step=ModelRun.Step.GENERATE, status=ModelRun.Status.RUNNING, total_count=8
    )


def test_owner_starts_a_run_through_the_api(
    owner_client: Client, small_study: Study, scripted, django_capture_on_commit_callbacks
) -> None:
    scripted(lambda chat: "x")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = owner_client.post(
            f"/api/studies/{small_study.pk}/runs/",
            {"step": "generate", "model_name": "scripted", "params": {"max_new_tokens": 32}, "seed": 3},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["step"], body["status"], body["total_count"], body["seed"]) == ("generate", "pending", 8, 3)
    assert body["params"]["max_new_tokens"] == 32
    assert len(callbacks) == 1  # enqueued after commit
    run = ModelRun.objects.get(pk=body["id"])
    assert run.created_by.username == "owner"


def test_bad_parameters_are_a_400_naming_the_field(owner_client: Client, small_study: Study) -> None:
    response = owner_client.post(
        f"/api/studies/{small_study.pk}/runs/",
        {"step": "generate", "params": {"max_new_tokens": "lots"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "params.max_new_tokens" in response.json()
    assert not ModelRun.objects.exists()


@pytest.mark.parametrize("who", ["outsider_client", "annotator_client"])
def test_non_owners_get_404_and_nothing_starts_or_changes(
    who: str, request: pytest.FixtureRequest, small_study: Study, run: ModelRun
) -> None:
    client: Client = request.getfixturevalue(who)
    assert client.post(f"/api/studies/{small_study.pk}/runs/", {"step": "extract"}).status_code == 404
    assert client.get(f"/api/studies/{small_study.pk}/runs/").status_code == 404
    assert client.get(f"/api/runs/{run.pk}/").status_code == 404
    assert client.get(f"/api/runs/{run.pk}/progress/").status_code == 404
    assert client.post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    assert client.post(f"/api/runs/{run.pk}/resume/").status_code == 404
    assert client.get(reverse("runs:list", args=[small_study.pk])).status_code == 404
    assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 404
    assert client.post(reverse("runs:start", args=[small_study.pk]), {"step": "extract"}).status_code == 404
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 404
    assert ModelRun.objects.count() == 1
    run.refresh_from_db()
    assert run.status == ModelRun.Status.RUNNING


def test_anonymous_api_calls_are_refused(anon_client: Client, run: ModelRun) -> None:
    assert anon_client.get(f"/api/runs/{run.pk}/progress/").status_code in (401, 403)
    assert anon_client.post(f"/api/studies/{run.study_id}/runs/", {"step": "extract"}).status_code in (401, 403)


def test_progress_reports_counts_throughput_eta_and_errors(owner_client: Client, run: ModelRun) -> None:
    from datetime import timedelta

    from django.utils import timezone

    ModelRun.objects.filter(pk=run.pk).update(
        done_count=3, failed_count=1, generated_tokens=400, started_at=timezone.now() - timedelta(seconds=40)
    )
    run.items.create(input_key="pair:1:mode:generic", status="failed", error="the model produced no text")
    response = owner_client.get(reverse("runs:api-run-progress", args=[run.pk]))
    assert response.status_code == 200
    body = response.json()
    assert (body["done"], body["failed"], body["total"], body["remaining"]) == (3, 1, 8, 4)
    assert body["items_per_second"] == pytest.approx(0.1, rel=0.1)
    assert body["tokens_per_second"] == pytest.approx(10, rel=0.1)
    assert body["eta_seconds"] == pytest.approx(40, rel=0.1)
    assert body["latest_errors"][0]["error"] == "the model produced no text"


def test_cancel_and_resume_through_the_api(
    owner_client: Client, run: ModelRun, django_capture_on_commit_callbacks
) -> None:
    run.items.create(input_key="pair:1:mode:generic")
    assert owner_client.post(f"/api/runs/{run.pk}/cancel/").json()["status"] == "cancelled"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = owner_client.post(f"/api/runs/{run.pk}/resume/", {}, content_type="application/json")
    assert response.json()["status"] == "pending"
    assert len(callbacks) == 1


def test_runs_page_lists_runs_with_live_progress_hooks(owner_client: Client, small_study: Study, run: ModelRun) -> None:
    response = owner_client.get(reverse("runs:list", args=[small_study.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-progress-url="/api/runs/{run.pk}/progress/"' in html
    assert "js/runs.js" in html
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style
    for step in ModelRun.Step.values:
        assert f'name="step" value="{step}"' in html


def test_start_form_creates_a_run_or_explains_the_error(
    owner_client: Client, small_study: Study, scripted, django_capture_on_commit_callbacks
) -> None:
    scripted(lambda chat: "x")
    url = reverse("runs:start", args=[small_study.pk])
    with django_capture_on_commit_callbacks(execute=False):
        response = owner_client.post(
            url,
            {"step": "generate", "model_name": "scripted", "params": "max_new_tokens=16\nlimit=2", "seed": "0"},
            follow=True,
        )
    assert "Started generate responses run" in response.content.decode()
    assert ModelRun.objects.get().params["limit"] == 2
    response = owner_client.post(url, {"step": "merge", "params": "", "seed": "0"}, follow=True)
    assert "params.extract_run_id" in response.content.decode()
    response = owner_client.post(url, {"step": "extract", "params": "oops", "seed": "0"}, follow=True)
    assert "line 1: expected key=value" in response.content.decode()
    assert ModelRun.objects.count() == 1


def test_run_page_shows_its_outputs(owner_client: Client, small_study: Study, scripted) -> None:
    from personalization.services import model_run_create, model_run_execute

    scripted(lambda chat: "A <b>lentil</b> stew.")
    done = model_run_create(study=small_study, step="generate", model_name="scripted")
    model_run_execute(run_id=done.pk)
    response = owner_client.get(reverse("runs:detail", args=[done.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "A &lt;b&gt;lentil&lt;/b&gt; stew." in html  # model text is escaped
    assert done.template_hash in html


def test_human_relevant_generation_gets_the_human_consensus_from_the_top_layer(
    owner: object, annotator: object, small_study: Study, scripted, django_capture_on_commit_callbacks
) -> None:
    from annotate.runs import run_start
    from judgments.models import Judgment
    from personalization.models import Response

    scripted(lambda chat: "A tailored answer.")
    pair = small_study.subjects.order_by("id").first().pairs.order_by("id").first()
    relevant = pair.subject.attributes.order_by("id").first()
    Judgment.objects.create(
        study=small_study, stage=2, annotator=annotator, prompt=pair.prompt, attribute=relevant, answer="yes"
    )
    with django_capture_on_commit_callbacks(execute=False):
        run = run_start(
            study=small_study,
            step="generate",
            user=owner,
            model_name="scripted",
            params={"modes": ["human_relevant_attributes"]},
        )
    assert run.params["human_relevant"] == {str(pair.prompt_id): [relevant.pk]}
    assert list(run.items.values_list("input_key", flat=True)) == [f"pair:{pair.pk}:mode:human_relevant_attributes"]
    from personalization.services import model_run_execute

    model_run_execute(run_id=run.pk)
    assert list(Response.objects.get(model_run=run).conditioned_on.all()) == [relevant]
