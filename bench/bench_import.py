"""Import throughput and memory: a generated WildChat-form JSONL file through conversations_import.

    .venv/bin/python bench/bench_import.py [--lines 100000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/importers .venv/bin/python bench/bench_import.py

Runs on the configured database engine, in a throwaway database made by Django's test-database
machinery (SQLite: a file in a temp dir; PostgreSQL: test_<name>), so nothing real is touched.
Two imports into two fresh studies: one timed without tracing (lines/s, ru_maxrss), one under
tracemalloc (peak Python allocation), then a re-import of the same file (the idempotent path).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings.test")

WORDS = (
    "recipe garden budget train visa lesson python rust sleep shift marathon toddler resume interview soup "
    "lentils tomato balcony rent savings portugal lisbon porto grammar verbs bike chain knee stretch oven"
).split()
MODELS = ("gpt-3.5-turbo-0301", "gpt-4-0314", "gpt-3.5-turbo-0613")


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def wildchat_line(rng: random.Random, index: int, subjects: int) -> dict:
    turns = []
    for turn in range(rng.choice((2, 2, 4, 4, 6))):
        role = "user" if turn % 2 == 0 else "assistant"
        words = rng.randint(8, 40) if role == "user" else rng.randint(40, 160)
        turns.append({"role": role, "content": sentence(rng, words), "language": "English", "toxic": False})
    moderation = [{"flagged": False, "categories": {"harassment": False}, "category_scores": {"harassment": 1e-5}}]
    return {
        "conversation_hash": f"{rng.getrandbits(128):032x}",
        "model": rng.choice(MODELS),
        "timestamp": (datetime(2023, 4, 1, tzinfo=UTC) + timedelta(minutes=index)).isoformat(),
        "hashed_ip": f"{rng.randrange(subjects):016x}",
        "conversation": turns,
        "turn": len(turns) // 2,
        "language": "English",
        "openai_moderation": moderation * len(turns),
        "toxic": False,
        "redacted": False,
        "country": rng.choice(("Portugal", "Brazil", "United States", "India")),
    }


def generate(path: Path, lines: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    subjects = max(1, lines // 20)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(lines):
            handle.write(json.dumps(wildchat_line(rng, index, subjects)) + "\n")
    return path.stat().st_size


def maxrss_mb() -> float:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()

    import django
    from django.conf import settings

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp_dir = Path(tmp)
        database = settings.DATABASES["default"]
        if database["ENGINE"].endswith("sqlite3"):
            # A file, as `make run` uses, rather than the in-memory default of SQLite test databases.
            database["TEST"] = {"NAME": str(tmp_dir / "bench.sqlite3")}
        django.setup()

        from django.db import connection
        from django.test.utils import setup_test_environment

        from personalization.importers import conversations_import
        from personalization.models import Conversation, Study, Turn

        setup_test_environment()
        db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            path = tmp_dir / "wildchat.jsonl"
            started = time.perf_counter()
            size = generate(path, args.lines)
            print(f"engine: {connection.vendor} ({db_name})")
            print(f"file: {args.lines} lines, {size / 1e6:.1f} MB (generated in {time.perf_counter() - started:.1f} s)")
            rss_before = maxrss_mb()

            validated_at: list[float] = []

            def progress(done: int) -> None:
                if not validated_at:
                    validated_at.append(time.perf_counter())

            study = Study.objects.create(name="bench timed")
            started = time.perf_counter()
            report = conversations_import(study=study, path=path, source="bench", progress=progress)
            elapsed = time.perf_counter() - started
            validation = validated_at[0] - started if validated_at else float("nan")
            print(f"import: {report.summary()}")
            print(
                f"time: {elapsed:.1f} s = {args.lines / elapsed:.0f} lines/s "
                f"(validation pass + first batch {validation:.1f} s); "
                f"{Conversation.objects.count()} conversations, {Turn.objects.count()} turns stored"
            )
            print(f"ru_maxrss: {rss_before:.0f} MB before the import, {maxrss_mb():.0f} MB after")

            traced = Study.objects.create(name="bench traced")
            tracemalloc.start()
            started = time.perf_counter()
            conversations_import(study=traced, path=path, source="bench")
            traced_elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"tracemalloc peak: {peak / 1e6:.1f} MB ({peak / size:.2f} x the file size; "
                f"the traced run took {traced_elapsed:.1f} s)"
            )

            started = time.perf_counter()
            again = conversations_import(study=study, path=path, source="bench")
            elapsed = time.perf_counter() - started
            print(f"re-import: {again.summary()} in {elapsed:.1f} s = {args.lines / elapsed:.0f} lines/s")
        finally:
            connection.creation.destroy_test_db(db_name, verbosity=0)


if __name__ == "__main__":
    main()
