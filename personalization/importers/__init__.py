"""Importers for data researchers bring: conversations, pre-extracted attributes and prompts.

Each importer validates the whole file first (streaming; errors as "file:line: field: message")
and stores nothing if anything is wrong (ImportValidationError); then it writes in batches of
1000 lines inside one transaction, calling `progress(lines_done)` after each batch. Re-importing
a file stores nothing twice. Pass `path=` or a seekable binary `stream=` (with `filename=` for
the error messages); Django's uploaded files are seekable.
"""

from __future__ import annotations

from personalization.importers.attributes import attributes_import
from personalization.importers.common import ImportReport, ImportValidationError
from personalization.importers.conversations import conversations_import
from personalization.importers.prompts import prompts_import

__all__ = [
    "ImportReport",
    "ImportValidationError",
    "attributes_import",
    "conversations_import",
    "prompts_import",
]
