"""Start (or resume) a model run of one pipeline step from the command line.

    manage.py run_step --study 3 --step extract --param max_new_tokens=96 --param limit=10
    manage.py run_step --study "Demo: everyday assistant conversations" --step generate --sync
    manage.py run_step --resume 42

Without --sync the run is enqueued for the Celery worker; with --sync it executes in this
process (for debugging), printing progress.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotate.runs import run_dispatch, run_params_parse
from judgments.model_judges import model_judge_run_execute
from personalization.models import ModelRun, Study
from personalization.services import RUN_TASKS, model_run_create, model_run_execute, model_run_resume


def study_lookup(value: str) -> Study:
    """A study by id or exact name; a clear error otherwise."""
    study = Study.objects.filter(pk=int(value)).first() if value.isdigit() else None
    if study is None:
        matches = list(Study.objects.filter(name=value)[:2])
        if len(matches) > 1:
            raise CommandError(f"--study {value!r}: several studies have this name; use the id")
        study = matches[0] if matches else None
    if study is None:
        raise CommandError(f"--study {value!r}: no study with this id or name")
    return study


def run_sync(run: ModelRun) -> ModelRun:
    """Executes a run in this process until it is done (no chaining to further steps)."""
    if RUN_TASKS[run.step].startswith("judgments."):
        model_judge_run_execute(run_id=run.pk)
    else:
        model_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


class Command(BaseCommand):
    help = "Start or resume a model run (extract, merge, relevance, generate, judge_correctness, judge_preference)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", help="study id or exact name")
        parser.add_argument("--step", choices=ModelRun.Step.values)
        parser.add_argument("--model", default=None, help="registry name (default: the study's or the site's)")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="run parameter")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--sync", action="store_true", help="run in this process instead of the worker")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="resume this run instead of starting one")
        parser.add_argument("--retry-failed", action="store_true", help="with --resume: retry failed items too")

    def handle(self, *args: object, **options: Any) -> None:
        if options["resume"]:
            run = ModelRun.objects.filter(pk=options["resume"]).first()
            if run is None:
                raise CommandError(f"--resume {options['resume']}: no such run")
            with transaction.atomic():
                resumed = model_run_resume(run=run, retry_failed=bool(options["retry_failed"]))
                if resumed and not options["sync"]:
                    run_dispatch(run=run)
            if not resumed:
                self.stdout.write(f"run #{run.pk} has nothing left to do ({run.status})")
                return
        else:
            if not options["study"] or not options["step"]:
                raise CommandError("--study and --step are required (or --resume RUN_ID)")
            study = study_lookup(str(options["study"]))
            try:
                params = run_params_parse(list(options["param"]))
                with transaction.atomic():
                    run = model_run_create(
                        study=study,
                        step=str(options["step"]),
                        model_name=options["model"] or None,
                        params=params,
                        seed=int(options["seed"]),
                    )
                    if not options["sync"]:
                        run_dispatch(run=run)
            except ValidationError as error:
                detail = error.message_dict if hasattr(error, "error_dict") else {"error": error.messages}
                raise CommandError(
                    "; ".join(f"{field}: {' '.join(messages)}" for field, messages in detail.items())
                ) from error
        if options["sync"]:
            self.stdout.write(f"run #{run.pk} ({run.step}, {run.total_count} items) running here...")
            run = run_sync(run)
            self.stdout.write(
                f"run #{run.pk} {run.status}: {run.done_count} done, {run.failed_count} failed of "
                f"{run.total_count}, {run.generated_tokens} tokens"
            )
        else:
            self.stdout.write(f"run #{run.pk} ({run.step}, {run.total_count} items) enqueued")
