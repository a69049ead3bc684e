"""Writes of the research domain: model runs (create, execute, cancel, resume, chain)."""

from __future__ import annotations

import hashlib
import logging

from celery import current_app
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from personalization.backends.base import BackendError
from personalization.backends.registry import model_spec
from personalization.models import Guideline, ModelRun, ModelRunItem, Study, StudyStage
from personalization.pipeline import plan
from personalization.pipeline.runner import RunOutcome, StepExecutor, run_counts_refresh, run_items_process
from personalization.prompting import load_template

logger = logging.getLogger(__name__)

Step = ModelRun.Step
# The Celery task that executes each step. Steps that write judgments run in the judgments app's
# task (that app sits above this one), so it is named here as text rather than imported.
RUN_TASKS: dict[str, str] = {
    Step.EXTRACT: "personalization.tasks.run_execute",
    Step.MERGE: "personalization.tasks.run_execute",
    Step.GENERATE: "personalization.tasks.run_execute",
    Step.RELEVANCE: "judgments.tasks.run_execute",
    Step.JUDGE_CORRECTNESS: "judgments.tasks.run_execute",
    Step.JUDGE_PREFERENCE: "judgments.tasks.run_execute",
}
STUDY_MODEL_FIELD: dict[str, str] = {
    Step.EXTRACT: "extractor_model",
    Step.MERGE: "embedding_model",
    Step.GENERATE: "generator_model",
    Step.RELEVANCE: "judge_model",
    Step.JUDGE_CORRECTNESS: "judge_model",
    Step.JUDGE_PREFERENCE: "judge_model",
}


def _model_role(step: str, params: dict) -> str:
    if step == Step.MERGE or (step == Step.RELEVANCE and params.get("method") == "embedding"):
        return "embedder"
    return "generator"


def _templates(step: str, params: dict) -> tuple[str, str]:
    """The template name(s) and one sha256 identifying their exact text."""
    names = plan.TEMPLATES[step]
    if step == Step.RELEVANCE and params.get("method") == "embedding":
        names = ()
    if step in (Step.JUDGE_CORRECTNESS, Step.JUDGE_PREFERENCE) and params.get("method") == "generate":
        names = (*names, "repair_json.v1")
    if not names:
        return "", ""
    templates = [load_template(name) for name in names]
    if len(templates) == 1:
        return templates[0].name, templates[0].sha256
    combined = hashlib.sha256("\n".join(t.sha256 for t in templates).encode()).hexdigest()
    return "+".join(t.name for t in templates), combined


def model_run_create(
    *,
    study: Study,
    step: str,
    model_name: str | None = None,
    params: dict | None = None,
    created_by: User | None = None,
    seed: int = 0,
) -> ModelRun:
    """Records a run (model identity, template hash, parameters, seed) and plans its items.

    Nothing is enqueued here. Raises ValidationError naming the field for a bad step, parameter
    or model name.
    """
    clean = plan.params_validate(study=study, step=step, params=params)
    role = _model_role(step, clean)
    wanted = model_name or getattr(study, STUDY_MODEL_FIELD[step]) or None
    if role == "embedder" and step == Step.RELEVANCE and not model_name:
        wanted = study.embedding_model or None
    try:
        spec = model_spec(wanted, role=role)
    except BackendError as exc:
        raise ValidationError({"model_name": str(exc)}) from exc
    template_name, template_hash = _templates(step, clean)
    keys = plan.plan_keys(study=study, step=step, params=clean)
    with transaction.atomic():
        run = ModelRun.objects.create(
            study=study,
            step=step,
            model_name=spec.name,
            model_id=spec.model_id,
            revision=spec.revision,
            backend=spec.backend,
            params=clean,
            template_name=template_name,
            template_hash=template_hash,
            seed=seed,
            total_count=len(keys),
            created_by=created_by,
        )
        ModelRunItem.objects.bulk_create([ModelRunItem(run=run, input_key=key) for key in keys], batch_size=1000)
    return run


def model_run_enqueue(*, run: ModelRun) -> None:
    """Sends the run's task once the current transaction commits (by name: see RUN_TASKS)."""
    name = RUN_TASKS[run.step]
    run_id = run.pk
    transaction.on_commit(lambda: current_app.send_task(name, args=[run_id]))


def model_run_cancel(*, run: ModelRun) -> bool:
    """PENDING/RUNNING -> CANCELLED. The executing loop stops before its next batch; items already
    recorded stay. Returns False when the run had already ended."""
    changed = ModelRun.objects.filter(pk=run.pk, status__in=[ModelRun.Status.PENDING, ModelRun.Status.RUNNING]).update(
        status=ModelRun.Status.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return bool(changed)


def model_run_resume(*, run: ModelRun, retry_failed: bool = False) -> bool:
    """Makes a cancelled, failed or stalled run PENDING again (the caller enqueues it).

    Only missing work is done when it runs. With retry_failed, items that failed (malformed output)
    get another chance. Returns False when there is nothing left to do.
    """
    with transaction.atomic():
        locked = ModelRun.objects.select_for_update().get(pk=run.pk)
        if retry_failed:
            ModelRunItem.objects.filter(run=locked, status=ModelRunItem.Status.FAILED).update(
                status=ModelRunItem.Status.PENDING, error="", updated_at=timezone.now()
            )
            run_counts_refresh(run=locked)
        has_work = ModelRunItem.objects.filter(run=locked, status=ModelRunItem.Status.PENDING).exists()
        if not has_work and locked.status == ModelRun.Status.DONE:
            run.refresh_from_db()
            return False
        ModelRun.objects.filter(pk=locked.pk).update(status=ModelRun.Status.PENDING, finished_at=None)
    run.refresh_from_db()
    return True


def model_runs_requeue_interrupted() -> list[int]:
    """Enqueues again every run left RUNNING with work pending; returns their ids.

    Precondition: no worker is processing runs right now (call it before starting the only worker,
    as `make run` does). A worker killed mid-run leaves its run RUNNING, and the embedded
    filesystem broker does not redeliver the unacknowledged message the way Redis does after its
    visibility timeout. Re-running is safe: only missing items are done.
    """
    requeued: list[int] = []
    runs = ModelRun.objects.filter(status=ModelRun.Status.RUNNING, items__status=ModelRunItem.Status.PENDING).distinct()
    for run in runs:
        with transaction.atomic():
            model_run_enqueue(run=run)
        requeued.append(run.pk)
    return requeued


def model_run_continue(run: ModelRun) -> ModelRun | None:
    """Creates and enqueues the next run of a chain (params["then"]) when `run` has finished.

    Called inside the transaction that marks the run DONE, exactly once per run. A next step
    that cannot be created (e.g. nothing to merge) ends the chain with a logged error.
    """
    chain = list(run.params.get("then") or [])
    # A run finished again after "retry failed" must not start its chain a second time.
    if not chain or run.params.get("chain_started_run_id"):
        return None
    following = dict(chain[0])
    params = dict(following.get("params") or {})
    if chain[1:]:
        params["then"] = chain[1:]
    try:
        with transaction.atomic():
            nxt = model_run_create(
                study=run.study,
                step=following["step"],
                model_name=following.get("model_name"),
                params=params,
                created_by=run.created_by,
                seed=run.seed,
            )
    except (ValidationError, BackendError, KeyError) as exc:
        logger.error("run %s finished but the next step %r could not start: %s", run.pk, following, exc)
        return None
    ModelRun.objects.filter(pk=run.pk).update(params={**run.params, "chain_started_run_id": nxt.pk})
    model_run_enqueue(run=nxt)
    return nxt


def personalization_executor(run: ModelRun) -> StepExecutor:
    """The executor of the steps this app runs itself (extract, merge, generate)."""
    if run.step == Step.EXTRACT:
        from personalization.pipeline.extract import ExtractExecutor

        return ExtractExecutor(run)
    if run.step == Step.MERGE:
        from personalization.pipeline.merge import MergeExecutor

        return MergeExecutor(run)
    if run.step == Step.GENERATE:
        from personalization.pipeline.generate import GenerateExecutor

        return GenerateExecutor(run)
    raise BackendError(f"step {run.step!r} is executed by {RUN_TASKS.get(run.step, 'no task')}, not here")


def model_run_execute(*, run_id: int, time_budget_seconds: float | None = None) -> RunOutcome:
    """Does the missing work of an extract/merge/generate run (safe to call twice; see runner)."""
    return run_items_process(
        run_id=run_id,
        executor_factory=personalization_executor,
        time_budget_seconds=time_budget_seconds,
        on_finished=model_run_continue,
    )


def study_stage_configure(
    *, study: Study, stage: int, judgments_per_item: int, lease_seconds: int, gate_on_previous_stage: bool
) -> StudyStage:
    """Creates or updates one stage's settings of a study."""
    stage_settings, _ = StudyStage.objects.update_or_create(
        study=study,
        stage=stage,
        defaults={
            "judgments_per_item": judgments_per_item,
            "lease_seconds": lease_seconds,
            "gate_on_previous_stage": gate_on_previous_stage,
        },
    )
    return stage_settings


def guideline_publish(*, study: Study, stage: int, text: str, user: User | None) -> Guideline | None:
    """Publishes `text` as the stage's next guideline version; None when it equals the latest.

    Judgments record the version they were made under, so an edit never rewrites a version.
    Takes a row lock on the stage's guidelines: call inside a transaction.
    """
    text = text.strip().replace("\r\n", "\n")
    # Two owners saving at once must not both take version n+1.
    latest = Guideline.objects.select_for_update().filter(study=study, stage=stage).order_by("-version").first()
    if latest is not None and latest.text.strip() == text:
        return None
    return Guideline.objects.create(
        study=study, stage=stage, version=(latest.version + 1) if latest else 1, text=text, created_by=user
    )
