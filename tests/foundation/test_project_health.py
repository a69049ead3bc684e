"""Project-wide checks: migrations are complete, lint is clean, production settings pass deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_no_pending_migrations() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"Models changed without a migration:\n{out.getvalue()} ({exc})")


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _clean_environ() -> dict[str, str]:
    """The parent's environment minus what the test process itself sets (the browser tests set
    DJANGO_ALLOW_ASYNC_UNSAFE in-process, which a deploy check rightly refuses)."""
    return {k: v for k, v in os.environ.items() if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SECRET_KEY"}}


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**_clean_environ(), **env},
    )


def test_production_settings_pass_deploy_check() -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "annotate.settings.production",
        "DJANGO_SECRET_KEY": "a" * 20 + "-prod-check-" + "b7Qz" * 10,
        "DJANGO_ALLOWED_HOSTS": "attune.example.org",
    }
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_secret_key() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "annotate.settings.production", "DJANGO_ALLOWED_HOSTS": "attune.example.org"}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_refuse_to_start_without_allowed_hosts() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "annotate.settings.production", "DJANGO_SECRET_KEY": "x" * 60}
    result = _manage(["check"], {**env, "DJANGO_ALLOWED_HOSTS": ""})
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_mypy_is_clean() -> None:
    """Type hints are checked with django-stubs (the style we keep: typed services and selectors)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "annotate", "judgments", "personalization"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=_clean_environ(),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    ("redis_url", "backend"),
    [("redis://127.0.0.1:6379/3", "RedisCache"), ("", "FileBasedCache")],
)
def test_web_processes_share_one_cache(redis_url: str, backend: str, tmp_path: Path) -> None:
    """Progress counts are cached across processes: in Redis when it is configured, else on disk."""
    env = {"DJANGO_SETTINGS_MODULE": "annotate.settings.local", "REDIS_URL": redis_url, "ATTUNE_VAR_DIR": str(tmp_path)}
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    result = _manage(["shell", "-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(backend)
