"""Tokens per second of a generate run on the default model, against the ceiling and a naive loop.

    .venv/bin/python bench/bench_generation.py [--pairs 16] [--max-new-tokens 48] [--batch-size 8]

Three measurements on the same chats, the same model object and the same parameters:
1. ceiling: a tight loop calling the backend's batched `generate` directly (nothing else);
2. service: a real generate ModelRun executed by `model_run_execute`, the exact code the Celery
   worker runs (planning excluded; DB writes, prompt rendering and bookkeeping included);
3. naive: one `generate` call per item (what a loop without batching would do), on a subset.

The model is loaded and warmed up before any timing. The database is a throwaway test database
(SQLite in memory, or `test_<name>` on PostgreSQL when DATABASE_URL is set). Needs
`manage.py prepare_models` to have converted the default model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings.test")
for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(key, "1")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

PERSONAS = [
    ["The user is vegetarian", "The user works night shifts as a nurse", "The user lives in Lyon"],
    ["The user is a Python developer", "The user is learning Rust", "The user has two young kids"],
    ["The user is retired", "The user is planning a trip to Portugal", "The user enjoys gardening"],
    ["The user is training for a marathon", "The user is on a tight budget", "The user speaks Spanish"],
]
PROMPTS = [
    "Suggest a dinner I can cook tonight.",
    "Plan a relaxing weekend for me.",
    "How can I learn something new in 20 minutes a day?",
    "Write a short birthday message for my sister.",
    "What should I pack for a three-day trip?",
    "Give me three tips to sleep better.",
    "How do I fix a slow laptop?",
    "Recommend a book for this month.",
]


def build_study(pairs: int):  # noqa: ANN201 (a Study, imported after setup)
    from personalization.models import Attribute, Prompt, Study, Subject, SubjectPrompt

    study = Study.objects.create(name="bench generation", status=Study.Status.OPEN)
    subjects = []
    for index, persona in enumerate(PERSONAS):
        subject = Subject.objects.create(study=study, external_id=f"bench-{index}", source="bench")
        for text in persona:
            Attribute.objects.create(subject=subject, text=text, reason="bench", confidence=0.9)
        subjects.append(subject)
    prompts = [Prompt.objects.create(study=study, text=text, source="bench") for text in PROMPTS]
    made = 0
    for prompt in prompts:
        for subject in subjects:
            if made < pairs:
                SubjectPrompt.objects.create(subject=subject, prompt=prompt)
                made += 1
    return study


def chats_of(run) -> list:  # noqa: ANN001
    """The chats the executor builds for the run's items, in item order."""
    from personalization.pipeline.generate import GenerateExecutor

    executor = GenerateExecutor(run)
    captured: list = []

    class Capture:
        identity = executor.backend.identity

        def generate(self, chats: list, params: object) -> list:
            captured.extend(chats)
            from personalization.backends.base import Generation

            return [Generation(text="x") for _ in chats]

    executor.backend = Capture()
    executor.process(list(run.items.order_by("id")))
    return captured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--naive-items", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=None, help="registry name (default: the site's default generator)")
    args = parser.parse_args()

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from personalization.backends.registry import chat_backend, model_spec
        from personalization.models import ModelRun
        from personalization.pipeline.common import generation_params
        from personalization.services import model_run_create, model_run_execute

        study = build_study(args.pairs)
        params = {"max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}
        run = model_run_create(study=study, step="generate", model_name=args.model, params=params)
        spec = model_spec(run.model_name)
        backend = chat_backend(run.model_name)
        gen_params = generation_params(run, spec.generation_params())
        chats = chats_of(run)
        print(f"model {spec.name} ({spec.backend}) {spec.model_id}")
        print(
            f"{len(chats)} items ({args.pairs} pairs x generic/all_attributes), batch {args.batch_size}, "
            f"max_new_tokens {args.max_new_tokens}, greedy"
        )

        t0 = time.perf_counter()
        backend.generate(chats[:2], gen_params)  # load + warm up
        print(f"load + warm-up: {time.perf_counter() - t0:.1f} s")

        def ceiling_pass() -> tuple[int, float]:
            """1. Ceiling: the batched backend call and nothing else."""
            t0 = time.perf_counter()
            tokens = 0
            for start in range(0, len(chats), args.batch_size):
                batch = chats[start : start + args.batch_size]
                tokens += sum(g.completion_tokens for g in backend.generate(batch, gen_params))
            return tokens, time.perf_counter() - t0

        def service_pass(run: ModelRun) -> tuple[int, float]:
            """2. Service: the worker's code path on a real run (a fresh run each time)."""
            t0 = time.perf_counter()
            model_run_execute(run_id=run.pk)
            elapsed = time.perf_counter() - t0
            run.refresh_from_db()
            assert run.status == ModelRun.Status.DONE and run.failed_count == 0, (run.status, run.failed_count)
            return run.generated_tokens, elapsed

        # The machine may be shared: ceiling and service passes alternate, so a change of load
        # hits both, and each repeat's ratio is reported as well as the totals.
        totals = {"ceiling": [0, 0.0], "service": [0, 0.0]}
        for repeat in range(args.repeats):
            fresh = (
                run
                if repeat == 0
                else model_run_create(study=study, step="generate", model_name=args.model, params=params)
            )
            c_tokens, c_s = ceiling_pass()
            s_tokens, s_s = service_pass(fresh)
            print(
                f"repeat {repeat + 1}: ceiling {c_tokens / c_s:.1f} tokens/s, service {s_tokens / s_s:.1f} tokens/s, "
                f"ratio {(s_tokens / s_s) / (c_tokens / c_s):.2f}"
            )
            totals["ceiling"][0] += c_tokens
            totals["ceiling"][1] += c_s
            totals["service"][0] += s_tokens
            totals["service"][1] += s_s

        # 3. Naive: one item per call, on a subset.
        subset = chats[: args.naive_items]
        t0 = time.perf_counter()
        naive_tokens = sum(backend.generate([chat], gen_params)[0].completion_tokens for chat in subset)
        naive_s = time.perf_counter() - t0
        naive = naive_tokens / naive_s
        ceiling = totals["ceiling"][0] / totals["ceiling"][1]
        service = totals["service"][0] / totals["service"][1]
        print(
            f"ceiling (tight batched loop): {totals['ceiling'][0]} tokens in {totals['ceiling'][1]:.1f} s"
            f" = {ceiling:.1f} tokens/s"
        )
        print(
            f"service (generate runs):      {totals['service'][0]} tokens in {totals['service'][1]:.1f} s"
            f" = {service:.1f} tokens/s"
        )
        print(f"naive (one item per call):    {naive_tokens} tokens in {naive_s:.1f} s = {naive:.1f} tokens/s")
        print(f"service / ceiling = {service / ceiling:.2f}   (target >= 0.80)")
        print(f"service / naive   = {service / naive:.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
