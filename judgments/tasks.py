"""Celery tasks of the model judges (relevance, correctness, preference): thin, id in, service call."""

from __future__ import annotations

from celery import Task, shared_task

from personalization.tasks import RETRY_OPTIONS, RunTask, time_budget_seconds


@shared_task(bind=True, base=RunTask, name="judgments.tasks.run_execute", **RETRY_OPTIONS)
def run_execute(self: Task, run_id: int) -> str:
    from judgments.model_judges import model_judge_run_execute

    outcome = model_judge_run_execute(run_id=run_id, time_budget_seconds=time_budget_seconds())
    if outcome.status == "more":
        self.apply_async(args=[run_id])
    return outcome.status
