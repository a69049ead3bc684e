"""personalization.services.model_runs_requeue_interrupted and its command (used by `make run`)."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command

from personalization.models import ModelRun, ModelRunItem
from tests.factories import ModelRunFactory

pytestmark = pytest.mark.django_db


def _run(study, status: str, item_statuses: list[str], step: str = "extract") -> ModelRun:
    run = ModelRunFactory(study=study, step=step, status=status)
    for n, item_status in enumerate(item_statuses):
        ModelRunItem.objects.create(run=run, input_key=f"conv:{n}", status=item_status)
    return run


def test_only_running_runs_with_pending_items_are_requeued(study, django_capture_on_commit_callbacks) -> None:
    interrupted = _run(study, "running", ["done", "pending", "pending"])
    judge = _run(study, "running", ["pending"], step="relevance")
    _run(study, "running", ["done", "failed"])  # nothing left to do
    _run(study, "cancelled", ["pending"])  # a researcher stopped it
    _run(study, "done", ["done"])

    with mock.patch("personalization.services.current_app") as app:
        with django_capture_on_commit_callbacks(execute=True):
            out = StringIO()
            call_command("requeue_interrupted_runs", stdout=out)

    sent = {call.kwargs["args"][0]: call.args[0] for call in app.send_task.call_args_list}
    assert sent == {interrupted.pk: "personalization.tasks.run_execute", judge.pk: "judgments.tasks.run_execute"}
    assert f"#{interrupted.pk}" in out.getvalue() and f"#{judge.pk}" in out.getvalue()


def test_nothing_interrupted_says_so(study) -> None:
    _run(study, "done", ["done"])
    out = StringIO()
    call_command("requeue_interrupted_runs", stdout=out)
    assert "No interrupted runs." in out.getvalue()
