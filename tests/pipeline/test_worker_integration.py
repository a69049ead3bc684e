"""A real Celery worker process runs every step on the demo data with the tiny model, is killed
with SIGKILL in the middle of a run, restarted, and every output exists exactly once.

CI sets DATABASE_URL (PostgreSQL) and REDIS_URL: the worker then uses this test's PostgreSQL test
database and its own Redis database number. Without them (a plain local run) the worker world is
a SQLite file and kombu's filesystem broker in a temporary folder, set up by the same commands.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
PYTHON = sys.executable
# This test's own Redis database, so it never consumes another test's or a developer's messages.
REDIS_DB = 12
RUN_TIMEOUT = 180


class World:
    """Where the worker and the commands run: environment, database access and the worker process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(
            DJANGO_SETTINGS_MODULE="annotate.settings.test",
            ATTUNE_VAR_DIR=str(tmp / "var"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            PYTHONPATH=str(ROOT),
        )
        (tmp / "var" / "broker" / "queue").mkdir(parents=True)
        (tmp / "var" / "broker" / "processed").mkdir(parents=True)
        self.sqlite_path: Path | None = None
        if connection.vendor == "postgresql":
            db = connection.settings_dict
            auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
            self.env["DATABASE_URL"] = (
                f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            )
        elif connection.vendor == "sqlite":
            # pytest-django's SQLite test database lives in this process's memory, out of a worker's
            # reach: the world gets its own database file, migrated below.
            self.sqlite_path = tmp / "var" / "attune.sqlite3"
        else:
            pytest.fail(f"the worker integration test supports PostgreSQL and SQLite, not {connection.vendor}")
        redis_url = os.environ.get("REDIS_URL")
        if redis_url:
            parts = urlsplit(redis_url)
            self.env["REDIS_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", "", ""))
            import redis

            redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
        self.worker: subprocess.Popen | None = None
        self.worker_log = tmp / "worker.log"

    def manage(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            pytest.fail(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=30) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def start_worker(self) -> None:
        log = self.worker_log.open("a")
        self.worker = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "annotate",
                "worker",
                "-Q",
                "generation,default",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(timeout=30)
        self.worker = None

    def start_run(self, *args: str) -> int:
        out = self.manage("run_step", *args)
        match = re.search(r"run #(\d+)", out)
        assert match, out
        return int(match.group(1))

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = RUN_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.worker is not None and self.worker.poll() is not None:
                pytest.fail(f"the worker exited while waiting for {what}:\n{self.log_tail()}")
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tail()}")

    def run_row(self, run_id: int) -> tuple[str, int, int, int]:
        [row] = self.query(
            "SELECT status, done_count, failed_count, total_count FROM personalization_modelrun WHERE id = %s",
            (run_id,),
        )
        return row

    def wait_finished(self, run_id: int) -> tuple[str, int, int, int]:
        self.wait_for(lambda: self.run_row(run_id)[0] in ("done", "failed", "cancelled"), f"run #{run_id}")
        return self.run_row(run_id)

    def log_tail(self) -> str:
        return self.worker_log.read_text()[-4000:] if self.worker_log.exists() else "(no worker log)"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.kill_worker()


SETUP = """
from pathlib import Path
from io import StringIO
from annotate.design import study_design_pairs
from personalization.demo.seed import seed_demo
from tests.model_fixtures import build_tiny_chat_model, register_tiny_model
seeded = seed_demo(stdout=StringIO())
study = seeded.study
study_design_pairs(study=study, seed=7)
register_tiny_model("tiny", build_tiny_chat_model(Path({model_dir!r})))
print("STUDY", study.pk)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_nothing_and_duplicates_nothing(world: World, tmp_path: Path) -> None:
    if world.sqlite_path is not None:
        world.manage("migrate", "--noinput")
    out = world.manage("shell", "-c", SETUP.format(model_dir=str(tmp_path / "tiny")))
    study = re.search(r"STUDY (\d+)", out).group(1)
    world.start_worker()

    def step(name: str, **params: object) -> int:
        args = ["--study", study, "--model", "tiny", "--step", name]
        for key, value in params.items():
            args += ["--param", f"{key}={value}"]
        return world.start_run(*args)

    extract = step("extract", limit=6, max_chars=300, max_new_tokens=24, max_repairs=1)
    assert world.wait_finished(extract)[0] == "done"
    merge = world.start_run("--study", study, "--step", "merge")  # the default embedder (MiniLM)
    assert world.wait_finished(merge)[0] == "done"
    relevance = step("relevance", limit=24)
    assert world.wait_finished(relevance)[0] == "done"

    # Generation one item per batch, so the kill lands in the middle of the run. Sampling: the
    # tiny random model's greedy output is newlines only, which is recorded as "no text".
    generate = step(
        "generate",
        modes="generic,all_attributes,selected_attributes",
        max_new_tokens=48,
        batch_size=1,
        limit=40,
        temperature=1.0,
    )
    total = world.run_row(generate)[3]
    assert total >= 20
    world.wait_for(lambda: sum(world.run_row(generate)[1:3]) >= 5, "generation to get going")
    world.kill_worker()
    status, done, failed, _ = world.run_row(generate)
    assert status == "running" and 5 <= done + failed < total, (status, done, failed, total)

    # A new worker; resuming re-enqueues the run and only the missing items are generated.
    world.start_worker()
    world.manage("run_step", "--resume", str(generate))
    assert world.wait_finished(generate)[0] == "done"

    correctness = step("judge_correctness", max_chars=300, limit=12)
    assert world.wait_finished(correctness)[0] == "done"
    preference = step("judge_preference", limit=12)
    assert world.wait_finished(preference)[0] == "done"
    world.kill_worker()

    report = json.loads(
        world.manage(
            "shell", "-c", "import json; from tests.pipeline.world_report import report; print(json.dumps(report()))"
        )
        .strip()
        .splitlines()[-1]
    )
    print(json.dumps({k: {f: v for f, v in e.items() if not f.startswith("response_keys")} for k, e in report.items()}))
    steps = {entry["step"]: entry for entry in report.values()}
    assert set(steps) == {"extract", "merge", "relevance", "generate", "judge_correctness", "judge_preference"}
    for run_id, entry in report.items():
        assert entry["status"] == "done", (run_id, entry)
        assert "pending" not in entry["items"], (run_id, entry)
        assert entry["done_count"] == entry["items"].get("done", 0), (run_id, entry)
        assert entry["failed_count"] == entry["items"].get("failed", 0), (run_id, entry)
        assert entry["done_count"] + entry["failed_count"] == entry["total"] > 0 or entry["step"] == "merge"
        for duplicates in ("duplicate_responses", "duplicate_judgments", "duplicate_attributes", "duplicate_items"):
            assert entry[duplicates] == 0, (run_id, duplicates, entry)
    generated = steps["generate"]
    # Exactly one response per finished (pair, mode) item: nothing lost, nothing twice.
    assert generated["response_keys_written"] == generated["response_keys_done"]
    assert generated["responses"] == generated["done_count"] > 0
    for step in ("relevance", "judge_correctness", "judge_preference"):
        assert steps[step]["judgments"] == steps[step]["done_count"] > 0
