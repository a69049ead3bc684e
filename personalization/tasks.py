"""Celery tasks of the pipeline: thin wrappers that take a run id and call the service."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from personalization.models import ModelRun
from personalization.pipeline.runner import TransientRunError

logger = logging.getLogger(__name__)

# Retried with exponential backoff: a model server hiccup or a lost database connection. Anything
# else (bad configuration, a bug) fails the run at once with its message.
TRANSIENT_ERRORS = (TransientRunError, OperationalError)
RETRY_OPTIONS = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}


def time_budget_seconds() -> float:
    """How long one task may keep taking batches before handing over to a fresh task, kept well
    under the soft time limit so a long run never gets killed mid-batch by the limit."""
    return max(20.0, float(settings.CELERY_TASK_SOFT_TIME_LIMIT) * 0.8 - 30)


class RunTask(Task):
    """Marks the run FAILED when the task gives up (retries exhausted, time limit, crash), so a run
    never shows RUNNING forever; resuming it continues where it stopped."""

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: object) -> None:
        run_id = args[0] if args else kwargs.get("run_id")
        if run_id is not None:
            ModelRun.objects.filter(pk=run_id, status=ModelRun.Status.RUNNING).update(
                status=ModelRun.Status.FAILED, finished_at=timezone.now()
            )
            logger.error("run %s failed in task %s: %s", run_id, task_id, exc)


@shared_task(bind=True, base=RunTask, name="personalization.tasks.run_execute", **RETRY_OPTIONS)
def run_execute(self: Task, run_id: int) -> str:
    from personalization.services import model_run_execute

    outcome = model_run_execute(run_id=run_id, time_budget_seconds=time_budget_seconds())
    if outcome.status == "more":
        # Hand over to a fresh task (same queue) instead of running into the time limit.
        self.apply_async(args=[run_id])
    return outcome.status
