"""Fixtures for the importer tests: small valid files in every supported form, and a helper that
writes any lines (text or raw bytes) to a file under the test's temp dir."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from personalization.importers import conversations_import
from personalization.models import Study
from tests.importers.helpers import wildchat_line

WriteFile = Callable[..., Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """write_file(name, lines) -> Path; a line is a dict (dumped as JSON), a str, or raw bytes."""

    def write(name: str, lines: list[dict | str | bytes]) -> Path:
        path = tmp_path / name
        with path.open("wb") as handle:
            for line in lines:
                if isinstance(line, dict):
                    line = json.dumps(line)
                handle.write((line.encode("utf-8") if isinstance(line, str) else line) + b"\n")
        return path

    return write


@pytest.fixture
def wildchat_file(write_file: WriteFile) -> Path:
    return write_file(
        "wildchat.jsonl",
        [
            wildchat_line("h-1", "ip-a", [("user", "Vegetarian lasagna ideas?"), ("assistant", "Try spinach.")]),
            wildchat_line("h-2", "ip-a", [("user", "Night shift sleep tips"), ("assistant", "Blackout curtains.")]),
            wildchat_line("h-3", "ip-b", [("system", "Be brief."), ("user", "Fix my bike chain"), ("assistant", "Ok")]),
        ],
    )


@pytest.fixture
def imported_study(study: Study, wildchat_file: Path) -> Study:
    """The test study with the WildChat file's two subjects (ip-a with h-1, h-2; ip-b with h-3)."""
    conversations_import(study=study, path=wildchat_file)
    return study


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", password="pw-root-123")
