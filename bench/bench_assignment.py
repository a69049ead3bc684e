"""Benchmark of the annotation hot path: "next item" + "submit" through the real API stack.

Each simulated annotator loops: GET next, pause (--think-ms, jittered; 0 = a closed-loop stress
test), then POST submit (which also leases and returns the next item, as the screens use it).
Measured per request: the latency the annotator sees, and SQL queries (including the session
and user lookups every authenticated request makes). Study sizes 1k and 100k stage-1 items
(k = 3), with 1, 8 and 32 concurrent annotators.

Two ways to serve them (--server-workers):
- N > 0 (default 2, one per core here): a pool of N long-lived server processes, as a WSGI
  server's workers are. Annotators are threads that hand each request to the pool and wait for
  its answer; latency includes any wait for a free worker.
- 0: every annotator runs the API stack in its own process (32 annotators = 32 server
  processes, each idle ~10 s between requests, which makes every request a cold one).

    createdb -h 127.0.0.1 -U postgres benchassign   # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchassign .venv/bin/python bench/bench_assignment.py

The database named by DATABASE_URL is migrated and filled with bench studies (reused on later
runs); never point it at a database you care about. Options: --sizes 1000,100000
--concurrency 1,8,32 --seconds 15 --think-ms 0 --server-workers 2.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from annotate.models import Assignment, Item  # noqa: E402
from annotate.services import items_build  # noqa: E402
from judgments.models import ItemFeedback, Judgment  # noqa: E402
from personalization.models import (  # noqa: E402
    Attribute,
    Conversation,
    Guideline,
    Stage,
    Study,
    StudyStage,
    Subject,
    Turn,
)

BATCH = 5000


def study_for(size: int) -> Study:
    """A bench study with `size` stage-1 items (built once, then reused)."""
    name = f"bench-assignment-{size}"
    study = Study.objects.filter(name=name).first()
    if study is not None and Item.objects.filter(study=study, stage=1).count() == size:
        # Every configuration starts from an untouched study: a small study is used up by earlier
        # configurations (k = 3 slots per item), which would leave later ones with nothing to do.
        with transaction.atomic():
            Judgment.objects.filter(study=study).delete()
            ItemFeedback.objects.filter(study=study).delete()
            Assignment.objects.filter(study=study).delete()
            Item.objects.filter(study=study).update(slots_taken=0, done_count=0)
        return study
    if study is not None:
        study.delete()
    started = time.perf_counter()
    with transaction.atomic():
        study = Study.objects.create(name=name, status=Study.Status.OPEN)
        for stage in Stage:
            StudyStage.objects.create(study=study, stage=stage, judgments_per_item=3, lease_seconds=600)
            Guideline.objects.create(study=study, stage=stage, version=1, text="Judge each attribute.")
        for offset in range(0, size, BATCH):
            n = min(BATCH, size - offset)
            subjects = Subject.objects.bulk_create(
                [Subject(study=study, external_id=f"s{offset + i}", source="bench") for i in range(n)]
            )
            conversations = Conversation.objects.bulk_create(
                [Conversation(subject=s, conversation_hash=f"h{s.pk}", model="bench") for s in subjects]
            )
            Turn.objects.bulk_create(
                [
                    Turn(conversation=c, index=i, role=role, content=text)
                    for c in conversations
                    for i, (role, text) in enumerate(
                        [
                            ("user", "I need a vegetarian dinner idea for after my night shift."),
                            ("assistant", "Here is a quick lentil curry you can make in 20 minutes. " * 8),
                        ]
                    )
                ]
            )
            Attribute.objects.bulk_create(
                [
                    Attribute(subject=s, text=text, reason="Said so in a conversation", confidence=0.7)
                    for s in subjects
                    for text in ("Is vegetarian", "Works night shifts", "Cooks at home")
                ]
            )
    items_build(study=study, stage=1)
    # Fresh bulk loads have no planner statistics yet (autovacuum would gather them shortly);
    # without them PostgreSQL may scan whole tables for the payload's lookups.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  built study of {size} items in {time.perf_counter() - started:.0f} s", flush=True)
    return study


def annotators_for(study: Study, tag: str, count: int) -> list[int]:
    users = [User.objects.get_or_create(username=f"bench-{tag}-{i}")[0] for i in range(count)]
    study.annotators.add(*users)
    return [u.pk for u in users]


def work(args: tuple[int, int, float, float, multiprocessing.Queue]) -> None:
    """One annotator: next + submit until time is up or no work is left; reports measurements.

    `think` seconds (on average) pass between an item's arrival and its submission (0 = a
    closed-loop stress test). Think times and the start are jittered, as real annotators do not
    all click at the same instant.
    """
    study_id, user_id, seconds, think, results = args
    rng = random.Random(user_id)  # noqa: S311 - load shaping, not security
    connections.close_all()  # never share the parent's connection across fork
    client = Client()
    client.force_login(User.objects.get(pk=user_id))
    # One untimed request first: a process builds its middleware chain and opens its database
    # connection on its first request, which a long-running server process pays once, not per
    # annotator. (Measured, this cold first request was every top-5% sample.)
    warm = client.get(f"/api/studies/{study_id}/my-judgments/")
    assert warm.status_code == 200, warm.status_code
    next_url = f"/api/studies/{study_id}/stages/1/next/"
    samples: list[tuple[str, float, int]] = []
    deadline = time.perf_counter() + seconds
    if think:
        time.sleep(rng.uniform(0, think))
    while time.perf_counter() < deadline:
        # The query log keeps only 9000 entries; emptied each round so every count is exact.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.get(next_url)
            elapsed = time.perf_counter() - t0
        samples.append(("next", elapsed, len(queries)))
        if response.status_code == 204:
            break
        payload = response.json()
        if think:
            time.sleep(rng.uniform(0.5, 1.5) * think)
        answers = {str(a["id"]): "makes_sense" for a in payload["attributes"]}
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.post(
                f"/api/assignments/{payload['assignment_id']}/submit/",
                {"answers": answers, "active_ms": 1000},
                content_type="application/json",
            )
            elapsed = time.perf_counter() - t0
        assert response.status_code == 200, response.content[:300]
        samples.append(("submit", elapsed, len(queries)))
    connections.close_all()
    results.put(samples)


def serve(
    args: tuple[int, list[int], multiprocessing.Queue, list[multiprocessing.Queue], multiprocessing.Queue],
) -> None:
    """One server worker: answers requests from the shared job queue until it gets None.

    Logs every annotator in and serves one untimed request before reporting ready, as a
    long-running worker has long since done. Each job is (annotator index, method, path, body);
    the answer (status, JSON body or None, queries) goes to that annotator's own queue.
    """
    study_id, user_ids, jobs, answers, ready = args
    connections.close_all()  # never share the parent's connection across fork
    clients = []
    for user_id in user_ids:
        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        clients.append(client)
    warm = clients[0].get(f"/api/studies/{study_id}/my-judgments/")
    assert warm.status_code == 200, warm.status_code
    ready.put(True)
    while (job := jobs.get()) is not None:
        index, method, path, body = job
        connection.queries_log.clear()  # the log keeps 9000 entries; emptied so every count is exact
        with CaptureQueriesContext(connection) as queries:
            if method == "GET":
                response = clients[index].get(path)
            else:
                response = clients[index].post(path, body, content_type="application/json")
        data = response.json() if response.status_code == 200 else None
        answers[index].put((response.status_code, data, len(queries)))
    connections.close_all()


def annotate_through_pool(
    index: int,
    study_id: int,
    seconds: float,
    think: float,
    jobs: multiprocessing.Queue,
    answers: multiprocessing.Queue,
    samples: list,
) -> None:
    """One annotator (a thread): next + submit through the server pool until time is up."""
    rng = random.Random(index)  # noqa: S311 - load shaping, not security

    def call(kind: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        t0 = time.perf_counter()
        jobs.put((index, method, path, body))
        status, data, queries = answers.get(timeout=120)
        samples.append((kind, time.perf_counter() - t0, queries))
        return status, data

    deadline = time.perf_counter() + seconds
    if think:
        time.sleep(rng.uniform(0, think))
    while time.perf_counter() < deadline:
        status, payload = call("next", "GET", f"/api/studies/{study_id}/stages/1/next/")
        if status == 204 or payload is None:
            break
        if think:
            time.sleep(rng.uniform(0.5, 1.5) * think)
        answers_ = {str(a["id"]): "makes_sense" for a in payload["attributes"]}
        status, _ = call(
            "submit",
            "POST",
            f"/api/assignments/{payload['assignment_id']}/submit/",
            {"answers": answers_, "active_ms": 1000},
        )
        assert status == 200, status


def run_pool(study: Study, user_ids: list[int], seconds: float, think: float, workers: int) -> list:
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    jobs: multiprocessing.Queue = ctx.Queue()
    answers: list[multiprocessing.Queue] = [ctx.Queue() for _ in user_ids]
    ready: multiprocessing.Queue = ctx.Queue()
    servers = [ctx.Process(target=serve, args=((study.pk, user_ids, jobs, answers, ready),)) for _ in range(workers)]
    for server in servers:
        server.start()
    for _ in servers:
        ready.get(timeout=300)
    samples: list = []
    threads = [
        threading.Thread(target=annotate_through_pool, args=(i, study.pk, seconds, think, jobs, answers[i], samples))
        for i in range(len(user_ids))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in servers:
        jobs.put(None)
    for server in servers:
        server.join()
    return samples


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def warm_up() -> None:
    """Loads the URLconf and the views it imports before forking, so no worker pays for it inside a measurement."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module


def run(size: int, concurrency: int, seconds: float, think: float, workers: int) -> dict:
    study = study_for(size)
    user_ids = annotators_for(study, f"{size}-{concurrency}-{time.time_ns()}", concurrency)
    started = time.perf_counter()
    if workers:
        samples = run_pool(study, user_ids, seconds, think, workers)
        started = time.perf_counter() - seconds  # the pool's start-up (logins) is not work time
    else:
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        results: multiprocessing.Queue = ctx.Queue()
        processes = [ctx.Process(target=work, args=((study.pk, uid, seconds, think, results),)) for uid in user_ids]
        for p in processes:
            p.start()
        samples = [s for _ in processes for s in results.get(timeout=seconds + 300)]
        for p in processes:
            p.join()
    wall = time.perf_counter() - started
    row: dict = {"size": size, "concurrency": concurrency, "think": think, "workers": workers, "pairs_per_s": 0.0}
    for kind in ("next", "submit"):
        times = [t * 1000 for k, t, _ in samples if k == kind]
        queries = sorted({q for k, _, q in samples if k == kind})
        row[kind] = {
            "count": len(times),
            "p50": statistics.median(times),
            "p95": percentile(times, 95),
            "queries": queries,
        }
    row["pairs_per_s"] = row["submit"]["count"] / wall
    row["load"] = os.getloadavg()[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--think-ms", default="0", help="comma list of pauses before each submit; 0 = closed loop (stress)"
    )
    parser.add_argument(
        "--server-workers", type=int, default=2, help="server processes shared by all annotators; 0 = one each"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench_assignment: set DATABASE_URL to a PostgreSQL database (e.g. .../benchassign).")
    call_command("migrate", verbosity=0)
    warm_up()
    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} CPU(s)", flush=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for think in (int(t) / 1000 for t in args.think_ms.split(",")):
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                rows.append(run(size, concurrency, args.seconds, think, args.server_workers))
                report(rows[-1])
    table(rows)


def report(row: dict) -> None:
    print(
        f"  {row['size']:>7} items, {row['concurrency']:>2} annotators, think {row['think'] * 1000:.0f} ms, "
        f"{row['workers'] or 'one per annotator'} server worker(s): "
        f"{row['pairs_per_s']:.1f} next+submit/s, "
        f"next p50 {row['next']['p50']:.1f} p95 {row['next']['p95']:.1f} ms, "
        f"submit p50 {row['submit']['p50']:.1f} p95 {row['submit']['p95']:.1f} ms, "
        f"queries next {row['next']['queries']} submit {row['submit']['queries']}, load {row['load']:.1f}",
        flush=True,
    )


def table(rows: list[dict]) -> None:
    print()
    print(
        "| items | annotators | think (ms) | server workers | next+submit per s | next p50 / p95 (ms) "
        "| submit p50 / p95 (ms) | queries next / submit | load avg |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['size']} | {r['concurrency']} | {r['think'] * 1000:.0f} | {r['workers'] or 'one each'} | "
            f"{r['pairs_per_s']:.1f} | "
            f"{r['next']['p50']:.1f} / {r['next']['p95']:.1f} | {r['submit']['p50']:.1f} / {r['submit']['p95']:.1f} | "
            f"{'-'.join(map(str, r['next']['queries']))} / {'-'.join(map(str, r['submit']['queries']))} | "
            f"{r['load']:.1f} |"
        )


if __name__ == "__main__":
    main()
