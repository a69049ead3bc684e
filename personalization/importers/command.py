"""The shared shape of the import_* management commands: find the study, run an importer with
progress lines, print the report, or print the file:line:field errors and exit non-zero."""

from __future__ import annotations

import abc
import time
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from personalization.importers.common import ImportReport, ImportValidationError
from personalization.models import Study

# At most one progress line per interval: a 100k-line import reports every batch.
PROGRESS_INTERVAL_SECONDS = 1.0


def study_from_option(value: str) -> Study:
    """A study by id, or by its exact name."""
    if value.isdigit():
        study = Study.objects.filter(pk=int(value)).first()
        if study is not None:
            return study
    matches = list(Study.objects.filter(name=value)[:2])
    if not matches:
        raise CommandError(f"No study with id or name {value!r}.")
    if len(matches) > 1:
        raise CommandError(f"Several studies are named {value!r}; pass the study id instead.")
    return matches[0]


class ImportCommand(BaseCommand, abc.ABC):
    """Subclasses set `kind` and implement `run_import`."""

    kind = ""

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="The file to import.")
        parser.add_argument("--study", required=True, help="Study id or exact name.")

    @abc.abstractmethod
    def run_import(self, *, study: Study, path: Path, progress: Callable[[int], None], options: dict) -> ImportReport:
        """Runs this command's importer service on the file."""

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        study = study_from_option(options["study"])
        self.stdout.write(f"Importing {self.kind} from {path} into study {study.pk} ({study.name}): validating...")
        started = time.monotonic()
        last = [started]

        def progress(lines_done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_SECONDS:
                last[0] = now
                rate = lines_done / max(now - started, 1e-9)
                self.stdout.write(f"  {lines_done} lines written ({rate:.0f} lines/s)")

        try:
            report = self.run_import(study=study, path=path, progress=progress, options=options)
        except ImportValidationError as exc:
            for line in str(exc).splitlines():
                self.stderr.write(line)
            raise CommandError(f"{path} was rejected ({exc.total} errors); nothing was imported.") from exc
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"{report.summary()} ({elapsed:.1f} s)"))
