"""The loop that executes a ModelRun: pending items in batches, one short transaction per item.

Why it is shaped like this:
- Model calls happen outside any transaction or lock, so a slow model never holds the database.
- Each item's outputs and its DONE/FAILED mark are written in one transaction, with the item row
  locked and re-checked, so a worker killed mid-run loses nothing it recorded and a second worker
  (or a redelivered task) executing the same run can never record an item twice. The unique
  constraints on the output tables are the last line of defence.
- Cancel is a status change on the run row; the loop re-reads it before every batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from personalization.backends.base import BackendError
from personalization.models import ModelRun, ModelRunItem
from personalization.signals import model_run_finished

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8


class TransientRunError(Exception):
    """A backend hiccup (server down, rate limit): the task retries later with backoff."""


@dataclass
class ItemResult:
    """What the model produced for one item, and how to store it.

    `error` non-empty means FAILED (with `raw_output` kept for inspection); otherwise `write`
    (if any) creates the item's output rows and runs inside the item's transaction.
    """

    item_id: int
    raw_output: str
    error: str = ""
    attempts: int = 1
    tokens: int = 0
    write: Callable[[], None] | None = None


class StepExecutor(Protocol):
    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        """Runs the model over a batch of pending items. Must not write to the database."""
        ...


ExecutorFactory = Callable[[ModelRun], StepExecutor]


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "finished" | "stopped" (cancelled/failed/not runnable) | "more" (time budget used up)
    processed: int


def db_text(text: str) -> str:
    """Model text as the database can store it: PostgreSQL rejects NUL characters, which random or
    broken models do emit; they become U+FFFD (visible, never silently dropped)."""
    return text.replace("\x00", "\ufffd")


def json_raw(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def run_batch_size(run: ModelRun, default: int = DEFAULT_BATCH_SIZE) -> int:
    value = run.params.get("batch_size", default)
    return max(1, int(value))


def _claim(run_id: int) -> ModelRun | None:
    """Marks the run RUNNING if it is PENDING or RUNNING (a resumed or redelivered task); else None."""
    now = timezone.now()
    claimed = ModelRun.objects.filter(pk=run_id, status__in=[ModelRun.Status.PENDING, ModelRun.Status.RUNNING]).update(
        status=ModelRun.Status.RUNNING, finished_at=None
    )
    if not claimed:
        return None
    ModelRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    return ModelRun.objects.get(pk=run_id)


def _still_running(run_id: int) -> bool:
    return ModelRun.objects.filter(pk=run_id, status=ModelRun.Status.RUNNING).exists()


def _record(run: ModelRun, result: ItemResult) -> bool:
    """Stores one item's outcome. Returns False when the item was already recorded (by another worker)."""
    with transaction.atomic():
        # Row lock: two workers that computed the same item serialize here; the second sees DONE
        # and records nothing. Held only for these few writes.
        item = ModelRunItem.objects.select_for_update().filter(pk=result.item_id).first()
        if item is None or item.status != ModelRunItem.Status.PENDING:
            return False
        failed = bool(result.error)
        if not failed and result.write is not None:
            result.write()
        item.status = ModelRunItem.Status.FAILED if failed else ModelRunItem.Status.DONE
        item.attempts = item.attempts + result.attempts
        item.raw_output = db_text(result.raw_output)
        item.error = db_text(result.error)
        item.save(update_fields=["status", "attempts", "raw_output", "error", "updated_at"])
        ModelRun.objects.filter(pk=run.pk).update(
            done_count=F("done_count") + (0 if failed else 1),
            failed_count=F("failed_count") + (1 if failed else 0),
            generated_tokens=F("generated_tokens") + result.tokens,
        )
    return True


def _fail_run(run: ModelRun, item: ModelRunItem | None, message: str) -> None:
    """A permanent backend error (model missing, bad configuration): the run stops as FAILED.

    The message goes on the item that hit it, which stays PENDING so a resumed run retries it
    once the configuration is fixed, and shows in the run's latest errors.
    """
    with transaction.atomic():
        if item is not None:
            ModelRunItem.objects.filter(pk=item.pk, status=ModelRunItem.Status.PENDING).update(
                error=message, updated_at=timezone.now()
            )
        ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.RUNNING).update(
            status=ModelRun.Status.FAILED, finished_at=timezone.now()
        )
    logger.error("run %s failed: %s", run.pk, message)


def run_counts_refresh(*, run: ModelRun) -> None:
    """Recomputes the run's counters from its items (they are kept exact by _record; this heals manual edits)."""
    counts = run.items.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=ModelRunItem.Status.DONE)),
        failed=Count("id", filter=Q(status=ModelRunItem.Status.FAILED)),
    )
    ModelRun.objects.filter(pk=run.pk).update(
        total_count=counts["total"], done_count=counts["done"], failed_count=counts["failed"]
    )


def _finish(run: ModelRun, on_finished: Callable[[ModelRun], object] | None) -> None:
    with transaction.atomic():
        # Only one caller moves RUNNING -> DONE, so a chained next run is created exactly once even
        # when a redelivered task finishes the same run again.
        moved = ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.RUNNING).update(
            status=ModelRun.Status.DONE, finished_at=timezone.now()
        )
        run_counts_refresh(run=run)
        if moved:
            run.refresh_from_db()
            finished = run
            transaction.on_commit(lambda: model_run_finished.send(sender=ModelRun, run=finished))
            if on_finished is not None:
                on_finished(run)


def run_items_process(
    *,
    run_id: int,
    executor_factory: ExecutorFactory,
    time_budget_seconds: float | None = None,
    max_batches: int | None = None,
    on_finished: Callable[[ModelRun], object] | None = None,
) -> RunOutcome:
    """Processes the run's PENDING items in batches until none are left, the run is cancelled,
    or the time budget is used up ("more": the caller re-enqueues).

    Idempotent: only pending items are processed and each is recorded at most once. Transient
    backend errors raise TransientRunError (the task retries); permanent ones mark the run FAILED.
    """
    started = time.monotonic()
    run = _claim(run_id)
    if run is None:
        return RunOutcome(status="stopped", processed=0)
    first_pending = run.items.filter(status=ModelRunItem.Status.PENDING).order_by("id").first()
    try:
        executor = executor_factory(run)
    except BackendError as exc:
        if exc.transient:
            raise TransientRunError(str(exc)) from exc
        _fail_run(run, first_pending, f"backend error: {exc}")
        return RunOutcome(status="stopped", processed=0)

    batch_size = run_batch_size(run)
    processed = 0
    batches = 0
    while True:
        if not _still_running(run.pk):
            return RunOutcome(status="stopped", processed=processed)
        if time_budget_seconds is not None and time.monotonic() - started > time_budget_seconds:
            return RunOutcome(status="more", processed=processed)
        if max_batches is not None and batches >= max_batches:
            return RunOutcome(status="more", processed=processed)
        items = list(run.items.filter(status=ModelRunItem.Status.PENDING).order_by("id")[:batch_size])
        if not items:
            break
        try:
            results = executor.process(items)
        except BackendError as exc:
            if exc.transient:
                raise TransientRunError(str(exc)) from exc
            _fail_run(run, items[0], f"backend error: {exc}")
            return RunOutcome(status="stopped", processed=processed)
        for result in results:
            processed += int(_record(run, result))
        batches += 1
    _finish(run, on_finished)
    return RunOutcome(status="finished", processed=processed)
