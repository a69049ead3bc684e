"""Enqueue the demo study's model pipeline once: extract -> merge -> relevance -> generate ->
judge_correctness -> judge_preference, each run starting the next when it finishes.

Sized for a laptop (2 CPU cores, SmolLM2-135M): a subset of the conversations, short outputs,
one repair attempt. The demo's imported attributes feed the later steps alongside the merged
ones. Idempotent: does nothing when the demo study already has runs.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from annotate.design import study_design_pairs
from annotate.runs import run_dispatch
from personalization.demo.seed import DEMO_STUDY_NAME
from personalization.models import ModelRun, Study, SubjectPrompt
from personalization.services import model_run_create

DEMO_CHAIN = [
    {"step": "merge", "params": {}},
    # A 135M model says YES to everything uncalibrated and NO to everything against a content-free
    # baseline; relative to its batch it picks out a subset, so the three modes differ in the demo.
    {"step": "relevance", "params": {"batch_size": 16, "calibrate": "batch"}},
    {
        "step": "generate",
        "params": {
            "modes": ["generic", "all_attributes", "selected_attributes"],
            "max_new_tokens": 64,
            "limit": 30,
            "batch_size": 16,
        },
    },
    # Log-prob judges score every answer choice separately (3 and 5 forward passes per item over
    # the conversation or both responses): short histories and a capped number of items.
    {"step": "judge_correctness", "params": {"batch_size": 16, "max_chars": 800, "limit": 30}},
    {"step": "judge_preference", "params": {"batch_size": 16, "limit": 24}},
]
DEMO_EXTRACT_PARAMS = {"max_new_tokens": 96, "max_repairs": 1, "limit": 12, "batch_size": 6, "max_chars": 1200}
DEMO_PAIRING_SEED = 20261204


def demo_chain_start(*, study: Study, model_name: str | None = None) -> ModelRun | None:
    """Creates the chain's first run and enqueues it, unless the study already has runs."""
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()
        if ModelRun.objects.filter(study=study).exists():
            return None
        if not SubjectPrompt.objects.filter(subject__study=study).exists():
            study_design_pairs(study=study, seed=DEMO_PAIRING_SEED)
        chain = [dict(link, model_name=model_name) if model_name else link for link in DEMO_CHAIN]
        run = model_run_create(
            study=study, step="extract", model_name=model_name, params={**DEMO_EXTRACT_PARAMS, "then": chain}
        )
        run_dispatch(run=run)
    return run


class Command(BaseCommand):
    help = "Enqueue the demo study's model pipeline (once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=None, help="registry name (default: the site's default generator)")

    def handle(self, *args: object, **options: Any) -> None:
        study = Study.objects.filter(name=DEMO_STUDY_NAME).order_by("id").first()
        if study is None:
            self.stdout.write(f"No study named {DEMO_STUDY_NAME!r}: run `manage.py seed_demo` first.")
            return
        run = demo_chain_start(study=study, model_name=options["model"] or None)
        if run is None:
            self.stdout.write("The demo study already has model runs; nothing enqueued.")
            return
        steps = " -> ".join(["extract", *(str(link["step"]) for link in DEMO_CHAIN)])
        self.stdout.write(
            f"Enqueued the demo pipeline ({steps}), starting with run #{run.pk}; watch it at /studies/{study.pk}/runs/"
        )
