"""Management commands: run_step (enqueue or --sync) and start_demo_runs (the demo chain, once)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from personalization.demo.seed import DEMO_STUDY_NAME, seed_demo
from personalization.models import ModelRun, Response, Study, SubjectPrompt


def test_run_step_sync_executes_in_process(small_study: Study, scripted) -> None:
    scripted(lambda chat: "An answer.")
    out = StringIO()
    call_command(
        "run_step",
        "--study",
        small_study.name,
        "--step",
        "generate",
        "--model",
        "scripted",
        "--param",
        "modes=generic",
        "--param",
        "max_new_tokens=8",
        "--sync",
        stdout=out,
    )
    run = ModelRun.objects.get()
    assert run.params["modes"] == ["generic"] and run.params["max_new_tokens"] == 8
    assert run.status == ModelRun.Status.DONE
    assert Response.objects.filter(model_run=run).count() == 4
    assert f"run #{run.pk} done: 4 done, 0 failed of 4" in out.getvalue()


def test_run_step_enqueues_after_commit(small_study: Study, scripted, django_capture_on_commit_callbacks) -> None:
    scripted(lambda chat: "x")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command(
            "run_step", "--study", str(small_study.pk), "--step", "extract", "--model", "scripted", stdout=StringIO()
        )
    assert len(callbacks) == 1
    assert ModelRun.objects.get().status == ModelRun.Status.PENDING


def test_run_step_errors_name_the_problem(small_study: Study) -> None:
    with pytest.raises(CommandError, match="no study with this id or name"):
        call_command("run_step", "--study", "Nope", "--step", "extract")
    with pytest.raises(CommandError, match="params.limit: must be at least 1"):
        call_command("run_step", "--study", str(small_study.pk), "--step", "extract", "--param", "limit=0")
    with pytest.raises(CommandError, match="line 1: expected key=value"):
        call_command("run_step", "--study", str(small_study.pk), "--step", "extract", "--param", "limit")
    with pytest.raises(CommandError, match="model_name: unknown model 'ghost'"):
        call_command("run_step", "--study", str(small_study.pk), "--step", "extract", "--model", "ghost")
    assert not ModelRun.objects.exists()


def test_run_step_resume(small_study: Study, scripted) -> None:
    scripted(lambda chat: "An answer.")
    call_command(
        "run_step", "--study", str(small_study.pk), "--step", "generate", "--model", "scripted", stdout=StringIO(), **{}
    )
    run = ModelRun.objects.get()
    ModelRun.objects.filter(pk=run.pk).update(status=ModelRun.Status.CANCELLED)
    call_command("run_step", "--resume", str(run.pk), "--sync", stdout=StringIO())
    run.refresh_from_db()
    assert (run.status, run.done_count) == (ModelRun.Status.DONE, 8)


def test_start_demo_runs_enqueues_the_chain_once(db: None, django_capture_on_commit_callbacks) -> None:
    seed_demo(stdout=StringIO())
    study = Study.objects.get(name=DEMO_STUDY_NAME)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("start_demo_runs", stdout=StringIO())
    run = ModelRun.objects.get(study=study)
    assert run.step == "extract" and len(callbacks) == 1
    assert [link["step"] for link in run.params["then"]] == [
        "merge",
        "relevance",
        "generate",
        "judge_correctness",
        "judge_preference",
    ]
    assert 0 < run.total_count <= 12
    assert SubjectPrompt.objects.filter(subject__study=study).exists()
    out = StringIO()
    call_command("start_demo_runs", stdout=out)
    assert "already has model runs" in out.getvalue()
    assert ModelRun.objects.filter(study=study).count() == 1
