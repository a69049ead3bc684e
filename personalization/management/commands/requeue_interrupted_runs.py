"""Enqueue again the model runs a killed worker left RUNNING (run before starting the only worker)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from personalization.services import model_runs_requeue_interrupted


class Command(BaseCommand):
    help = "Enqueue again model runs left RUNNING by a worker that stopped mid-run. Run it before starting workers."

    def handle(self, *args: object, **options: object) -> None:
        ids = model_runs_requeue_interrupted()
        if ids:
            self.stdout.write(f"Requeued interrupted run(s): {', '.join(f'#{i}' for i in ids)}")
        else:
            self.stdout.write("No interrupted runs.")
