"""manage.py import_prompts FILE --study ID|NAME [--format auto|jsonl|csv] [--source TAG]"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path

from personalization.importers import ImportReport, prompts_import
from personalization.importers.command import ImportCommand
from personalization.importers.prompts import FORMATS
from personalization.models import Study


class Command(ImportCommand):
    help = "Import prompts (JSONL or CSV) into a study."
    kind = "prompts"

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--format", choices=FORMATS, default="auto", help="Default: from the file name or content.")
        parser.add_argument("--source", default="", help="Source tag for prompts whose line names none (e.g. lima).")

    def run_import(self, *, study: Study, path: Path, progress: Callable[[int], None], options: dict) -> ImportReport:
        return prompts_import(
            study=study, path=path, fmt=options["format"], source=options["source"], progress=progress
        )
