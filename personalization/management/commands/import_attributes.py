"""manage.py import_attributes FILE --study ID|NAME"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from personalization.importers import ImportReport, attributes_import
from personalization.importers.command import ImportCommand
from personalization.models import Study


class Command(ImportCommand):
    help = "Import pre-extracted attributes JSONL (user_id + merged_attributes) for a study's existing subjects."
    kind = "attributes"

    def run_import(self, *, study: Study, path: Path, progress: Callable[[int], None], options: dict) -> ImportReport:
        return attributes_import(study=study, path=path, progress=progress)
