"""The import_* management commands: study lookup, success summary, error list and exit status."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from personalization.importers import command as command_module
from personalization.models import Attribute, Prompt, Study, Subject
from tests.importers.conftest import WriteFile
from tests.importers.helpers import counts


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_conversations_by_study_name(study: Study, wildchat_file: Path) -> None:
    out, _ = run("import_conversations", str(wildchat_file), "--study", "Test study", "--source", "wc", "--synthetic")
    assert "conversations: 3 lines read; created 2 subjects, 3 conversations, 7 turns" in out
    assert set(Subject.objects.values_list("source", "is_synthetic")) == {("wc", True)}


def test_import_attributes_and_prompts_by_study_id(imported_study: Study, write_file: WriteFile) -> None:
    attributes = write_file("a.jsonl", [{"user_id": "ip-a", "merged_attributes": [{"attribute": "Cooks"}]}])
    prompts = write_file("p.csv", ["text", "Plan a trip"])
    out_a, _ = run("import_attributes", str(attributes), "--study", str(imported_study.pk))
    out_p, _ = run("import_prompts", str(prompts), "--study", str(imported_study.pk), "--source", "lima")
    assert "created 1 merged_attributes" in out_a
    assert "created 1 prompts" in out_p
    assert Attribute.objects.get().text == "Cooks"
    assert Prompt.objects.get().source == "lima"


def test_forced_format_and_subject_key(study: Study, write_file: WriteFile) -> None:
    path = write_file("c.jsonl", [{"person": "p1", "messages": [{"role": "user", "content": "Hi"}]}])
    run("import_conversations", str(path), "--study", "Test study", "--format", "openai", "--subject-key", "person")
    assert Subject.objects.get().external_id == "p1"


def test_rejected_file_prints_errors_and_exits_non_zero(study: Study, write_file: WriteFile) -> None:
    path = write_file("bad.jsonl", [{"user": "u", "messages": [{"role": "robot", "content": "x"}]}])
    before = counts()
    err = io.StringIO()
    with pytest.raises(CommandError, match="rejected \\(1 errors\\); nothing was imported") as caught:
        call_command("import_conversations", str(path), "--study", "Test study", stdout=io.StringIO(), stderr=err)
    assert f"{path}:1: messages[0].role: unknown role 'robot'" in err.getvalue()
    assert caught.value.returncode == 1
    assert counts() == before


def test_unknown_study_and_missing_file_are_clear_errors(study: Study, wildchat_file: Path) -> None:
    with pytest.raises(CommandError, match="No study with id or name 'Nope'"):
        run("import_prompts", str(wildchat_file), "--study", "Nope")
    with pytest.raises(CommandError, match="missing.jsonl: no such file"):
        run("import_prompts", str(wildchat_file.parent / "missing.jsonl"), "--study", "Test study")


def test_progress_lines_are_printed(study: Study, wildchat_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command_module, "PROGRESS_INTERVAL_SECONDS", 0.0)
    out, _ = run("import_conversations", str(wildchat_file), "--study", "Test study")
    assert "validating..." in out
    assert "  3 lines written (" in out
