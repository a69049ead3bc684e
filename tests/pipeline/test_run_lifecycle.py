"""Run lifecycle: exactly-once recording, reruns doing only missing work, cancel, resume, errors, chaining."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from judgments.models import Judgment
from personalization.backends.base import BackendError
from personalization.models import ModelRun, ModelRunItem, Response, Study
from personalization.pipeline.runner import TransientRunError
from personalization.services import (
    model_run_cancel,
    model_run_create,
    model_run_execute,
    model_run_resume,
)


def test_executing_twice_writes_nothing_twice(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "An answer.")
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    assert model_run_execute(run_id=run.pk).status == "finished"
    assert model_run_execute(run_id=run.pk).status == "stopped"  # already done: nothing to do
    assert Response.objects.filter(model_run=run).count() == 8
    assert sum(backend.generate_calls) == 8


def test_a_rerun_only_does_the_missing_items(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "An answer.")
    run = model_run_create(study=small_study, step="generate", model_name="scripted", params={"batch_size": 3})
    # A worker that stops after one batch (killed, or out of time) ...
    from personalization.pipeline.runner import run_items_process
    from personalization.services import personalization_executor

    outcome = run_items_process(run_id=run.pk, executor_factory=personalization_executor, max_batches=1)
    assert outcome.status == "more"
    run.refresh_from_db()
    assert (run.status, run.done_count) == (ModelRun.Status.RUNNING, 3)
    # ... and the next one picks up the remaining five.
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count) == (ModelRun.Status.DONE, 8)
    assert backend.generate_calls == [3, 3, 2]
    assert Response.objects.filter(model_run=run).count() == 8


def test_a_second_worker_recording_the_same_items_first_wins(small_study: Study, scripted) -> None:
    """Worker A computes a batch; meanwhile worker B finishes the whole run. A records nothing."""
    state = {"nested": False}
    run_holder: dict[str, ModelRun] = {}

    def reply(chat: list[dict[str, str]]) -> str:
        if not state["nested"]:
            state["nested"] = True
            model_run_execute(run_id=run_holder["run"].pk)  # worker B, while A is still generating
        return "An answer."

    scripted(reply)
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    run_holder["run"] = run
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count, run.failed_count) == (ModelRun.Status.DONE, 8, 0)
    assert Response.objects.filter(model_run=run).count() == 8


def test_unique_constraints_reject_a_second_output_for_the_same_input(small_study: Study, scripted) -> None:
    scripted(lambda chat: "An answer.")
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    model_run_execute(run_id=run.pk)
    existing = Response.objects.filter(model_run=run).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(pair=existing.pair, mode=existing.mode, text="again", model_run=run)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelRunItem.objects.create(run=run, input_key=run.items.first().input_key)


def test_unique_constraint_rejects_a_second_model_judgment(small_study: Study, scripted) -> None:
    from judgments.model_judges import model_judge_run_execute

    scripted(lambda chat: "")
    run = model_run_create(study=small_study, step="relevance", model_name="scripted")
    model_judge_run_execute(run_id=run.pk)
    judgment = Judgment.objects.filter(model_run=run).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            study=small_study, stage=2, model_run=run, prompt=judgment.prompt, attribute=judgment.attribute, answer="no"
        )


def test_cancel_stops_before_the_next_batch_and_resume_finishes(small_study: Study, scripted) -> None:
    run_holder: dict[str, ModelRun] = {}

    def reply(chat: list[dict[str, str]]) -> str:
        model_run_cancel(run=ModelRun.objects.get(pk=run_holder["run"].pk))
        return "An answer."

    backend = scripted(reply)
    run = model_run_create(study=small_study, step="generate", model_name="scripted", params={"batch_size": 3})
    run_holder["run"] = run
    assert model_run_execute(run_id=run.pk).status == "stopped"
    run.refresh_from_db()
    assert (run.status, run.done_count) == (ModelRun.Status.CANCELLED, 3)  # the batch in flight is kept
    assert run.finished_at is not None

    backend.reply = lambda chat: "An answer."
    assert model_run_resume(run=run) is True
    assert run.status == ModelRun.Status.PENDING
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count) == (ModelRun.Status.DONE, 8)
    assert Response.objects.filter(model_run=run).count() == 8
    assert model_run_resume(run=run) is False  # nothing left


def test_a_cancelled_pending_run_does_nothing(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "An answer.")
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    assert model_run_cancel(run=run) is True
    assert model_run_execute(run_id=run.pk).status == "stopped"
    assert backend.generate_calls == []
    assert model_run_cancel(run=run) is False


def test_resume_with_retry_failed_gives_failed_items_another_chance(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "")
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.done_count, run.failed_count) == (0, 8)
    backend.reply = lambda chat: "Now with text."
    assert model_run_resume(run=run, retry_failed=True) is True
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.done_count, run.failed_count) == (ModelRun.Status.DONE, 8, 0)


def test_a_permanent_backend_error_fails_the_run_with_its_message(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "x")

    def broken(chats: list, params: object) -> list:
        raise BackendError("model folder /nowhere does not exist; run prepare_models")

    backend.generate = broken
    run = model_run_create(study=small_study, step="generate", model_name="scripted", params={"batch_size": 1})
    assert model_run_execute(run_id=run.pk).status == "stopped"
    run.refresh_from_db()
    assert run.status == ModelRun.Status.FAILED
    first = run.items.order_by("id").first()
    # The item that hit it stays pending (a resume retries it) and carries the message.
    assert first.status == ModelRunItem.Status.PENDING
    assert first.error == "backend error: model folder /nowhere does not exist; run prepare_models"
    assert run.items.filter(status=ModelRunItem.Status.PENDING).count() == 8


def test_a_transient_backend_error_is_raised_for_the_task_to_retry(small_study: Study, scripted) -> None:
    backend = scripted(lambda chat: "x")

    def flaky(chats: list, params: object) -> list:
        raise BackendError("server unreachable", transient=True)

    backend.generate = flaky
    run = model_run_create(study=small_study, step="generate", model_name="scripted")
    with pytest.raises(TransientRunError):
        model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ModelRun.Status.RUNNING
    assert run.items.filter(status=ModelRunItem.Status.PENDING).count() == 8


def test_a_finished_run_starts_the_next_step_of_its_chain(
    small_study: Study, scripted, django_capture_on_commit_callbacks
) -> None:
    scripted(lambda chat: "An answer.")
    chain = [{"step": "judge_preference", "params": {"limit": 2}, "model_name": "scripted"}]
    run = model_run_create(
        study=small_study, step="generate", model_name="scripted", params={"then": chain, "batch_size": 4}
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        model_run_execute(run_id=run.pk)
    following = ModelRun.objects.get(study=small_study, step="judge_preference")
    assert following.params["generate_run_id"] == run.pk
    assert following.total_count == 2 and following.model_name == "scripted"
    assert len(callbacks) == 2  # the run-finished signal, and the next step enqueued once
    # Finishing the same run again (a redelivered task) does not start the chain twice.
    model_run_execute(run_id=run.pk)
    assert ModelRun.objects.filter(study=small_study, step="judge_preference").count() == 1
    # Nor does finishing it again after a resume.
    run.refresh_from_db()
    assert run.params["chain_started_run_id"] == following.pk
    item = run.items.order_by("id").first()
    _, pair_id, _, mode = item.input_key.split(":")
    Response.objects.filter(model_run=run, pair_id=pair_id, mode=mode).delete()  # as if it had failed
    ModelRunItem.objects.filter(pk=item.pk).update(status="failed")
    assert model_run_resume(run=run, retry_failed=True) is True
    model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ModelRun.Status.DONE
    assert ModelRun.objects.filter(study=small_study, step="judge_preference").count() == 1
