"""manage.py import_conversations FILE --study ID|NAME [--format auto|wildchat|openai] [--source TAG]
[--synthetic] [--subject-key KEY]"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path

from personalization.importers import ImportReport, conversations_import
from personalization.importers.command import ImportCommand
from personalization.importers.conversations import FORMATS
from personalization.models import Study


class Command(ImportCommand):
    help = "Import conversations JSONL (WildChat or OpenAI chat form) into a study, grouped into subjects."
    kind = "conversations"

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--format", choices=FORMATS, default="auto", help="Default: detected from the first line.")
        parser.add_argument("--source", default="", help="Source tag of the subjects (default: the format's name).")
        parser.add_argument("--synthetic", action="store_true", help="Mark new subjects as synthetic.")
        parser.add_argument(
            "--subject-key", default=None, help="Field naming the subject (default: hashed_ip / user, subject)."
        )

    def run_import(self, *, study: Study, path: Path, progress: Callable[[int], None], options: dict) -> ImportReport:
        return conversations_import(
            study=study,
            path=path,
            fmt=options["format"],
            source=options["source"],
            is_synthetic=options["synthetic"],
            subject_key=options["subject_key"],
            progress=progress,
        )
