"""Model runs in motion: start, cancel, resume and watch, for study owners only.

This layer sees both apps below it: it reads the human consensus (judgments) that a
`human_relevant_attributes` generation needs, hands it to personalization as plain ids, and
sends each run to the task of the app that executes its step.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotate.access import first_or_404, in_study, study_get_for_owner
from judgments import tasks as judgments_tasks
from judgments.selectors import relevant_attributes_by_humans
from personalization import selectors as personalization_selectors
from personalization import services as personalization_services
from personalization import tasks as personalization_tasks
from personalization.models import ModelRun, Response, Study

STEP_TASK: dict[str, Any] = {
    ModelRun.Step.EXTRACT: personalization_tasks.run_execute,
    ModelRun.Step.MERGE: personalization_tasks.run_execute,
    ModelRun.Step.GENERATE: personalization_tasks.run_execute,
    ModelRun.Step.RELEVANCE: judgments_tasks.run_execute,
    ModelRun.Step.JUDGE_CORRECTNESS: judgments_tasks.run_execute,
    ModelRun.Step.JUDGE_PREFERENCE: judgments_tasks.run_execute,
}


def run_get_for_owner(*, user: AbstractBaseUser | AnonymousUser, run_id: int) -> ModelRun:
    """The run if the user owns its study; Http404 otherwise (annotators and outsiders alike)."""
    rows = ModelRun.objects.select_related("study").filter(in_study(user, "owners"), pk=run_id)
    return first_or_404(rows, user=user, what="run")


def _require_owner(*, study: Study, user: AbstractBaseUser | AnonymousUser) -> None:
    study_get_for_owner(user=user, study_id=study.pk)


def run_dispatch(*, run: ModelRun) -> None:
    """Enqueues the run on its step's task once the transaction commits."""
    task = STEP_TASK[run.step]
    run_id = run.pk
    transaction.on_commit(lambda: task.delay(run_id))


def run_start(
    *,
    study: Study,
    step: str,
    user: AbstractBaseUser | AnonymousUser,
    model_name: str | None = None,
    params: dict | None = None,
    seed: int = 0,
) -> ModelRun:
    """Creates a run (validated, planned) and enqueues it. Raises ValidationError naming the field
    for bad input and Http404 when the user does not own the study; nothing is created then."""
    _require_owner(study=study, user=user)
    params = dict(params or {})
    modes = params.get("modes") or []
    if isinstance(modes, str):
        modes = [part.strip() for part in modes.split(",") if part.strip()]
    if step == ModelRun.Step.GENERATE and Response.Mode.HUMAN_RELEVANT_ATTRIBUTES in modes:
        params["human_relevant"] = {
            str(prompt_id): sorted(ids) for prompt_id, ids in relevant_attributes_by_humans(study=study).items()
        }
    with transaction.atomic():
        run = personalization_services.model_run_create(
            study=study,
            step=step,
            model_name=model_name,
            params=params,
            created_by=user,  # type: ignore[arg-type]
            seed=seed,
        )
        run_dispatch(run=run)
    return run


def run_cancel(*, run: ModelRun, user: AbstractBaseUser | AnonymousUser) -> ModelRun:
    """Stops the run before its next batch; what was recorded stays. Ended runs are left as they are."""
    _require_owner(study=run.study, user=user)
    personalization_services.model_run_cancel(run=run)
    return run


def run_resume(*, run: ModelRun, user: AbstractBaseUser | AnonymousUser, retry_failed: bool = False) -> ModelRun:
    """Enqueues the run again; only its missing items are done (failed ones too with retry_failed).

    Also the way to restart a run whose worker died: a second task on a live run is harmless.
    """
    _require_owner(study=run.study, user=user)
    with transaction.atomic():
        if personalization_services.model_run_resume(run=run, retry_failed=retry_failed):
            run_dispatch(run=run)
    return run


def run_progress(*, run: ModelRun) -> dict:
    """Counts, throughput (items/s, tokens/s since the run started), ETA and the latest errors."""
    run.refresh_from_db()
    now = timezone.now()
    end = run.finished_at or now
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    finished = run.done_count + run.failed_count
    remaining = max(0, run.total_count - finished)
    items_per_second = finished / elapsed if elapsed > 0 else 0.0
    tokens_per_second = run.generated_tokens / elapsed if elapsed > 0 else 0.0
    active = run.status in (ModelRun.Status.PENDING, ModelRun.Status.RUNNING)
    eta = remaining / items_per_second if active and items_per_second > 0 else None
    return {
        "id": run.pk,
        "step": run.step,
        "status": run.status,
        "done": run.done_count,
        "failed": run.failed_count,
        "total": run.total_count,
        "remaining": remaining,
        "generated_tokens": run.generated_tokens,
        "elapsed_seconds": round(elapsed, 1),
        "items_per_second": round(items_per_second, 3),
        "tokens_per_second": round(tokens_per_second, 2),
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "latest_errors": personalization_selectors.run_latest_errors(run=run, limit=5),
    }


def run_params_parse(lines: list[str] | str) -> dict:
    """Run parameters from a form or the command line: a JSON object, or `key=value` lines where
    each value is read as JSON when it can be (numbers, lists, true/false) and as text otherwise.

    Raises ValidationError naming the line that is not `key=value`.
    """
    if isinstance(lines, str):
        stripped = lines.strip()
        if stripped.startswith("{"):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ValidationError({"params": f"line {exc.lineno} column {exc.colno}: {exc.msg}"}) from exc
            if not isinstance(parsed, dict):
                raise ValidationError({"params": "expected a JSON object"})
            return parsed
        lines = stripped.splitlines()
    params: dict = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError({"params": f"line {number}: expected key=value, got {line.strip()!r}"})
        try:
            value = json.loads(raw.strip())
        except json.JSONDecodeError:
            value = raw.strip()
        params[key.strip()] = value
    return params
