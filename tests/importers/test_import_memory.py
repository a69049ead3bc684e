"""A 20k-line import streams: Python's peak allocation stays a small fraction of the file size."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from personalization.importers import conversations_import
from personalization.models import Conversation, Study, Turn

LINES = 20_000


def write_wildchat_file(path: Path) -> int:
    """WildChat-like lines of ~2.3 kB: two turns, the answer a few paragraphs long."""
    answer = "Here is a plan you can follow this week. " * 52
    with path.open("w", encoding="utf-8") as handle:
        for i in range(LINES):
            line = {
                "conversation_hash": f"hash-{i:06d}",
                "hashed_ip": f"ip-{i % 400:03d}",
                "model": "gpt-4-0314",
                "timestamp": "2023-04-09T00:02:53+00:00",
                "conversation": [
                    {"role": "user", "content": f"Question number {i}: how do I keep basil alive on a balcony?"},
                    {"role": "assistant", "content": answer},
                ],
                "language": "English",
            }
            handle.write(json.dumps(line) + "\n")
    return path.stat().st_size


def test_twenty_thousand_line_import_has_bounded_memory(study: Study, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    size = write_wildchat_file(path)
    assert size > 40_000_000

    tracemalloc.start()
    try:
        report = conversations_import(study=study, path=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.created == {"subjects": 400, "conversations": LINES, "turns": 2 * LINES}
    assert Conversation.objects.count() == LINES
    assert Turn.objects.count() == 2 * LINES
    # Holding the file (or its parsed lines) would cost several times its size; a batch of
    # 1000 lines and the duplicate index cost a few MB.
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
