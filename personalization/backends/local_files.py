"""Finding model folders on disk: a plain directory, or a Hub-style id in the Hugging Face cache.

Nothing here downloads. A Hub-style id ("ORG/NAME" plus a pinned revision) is resolved with
huggingface_hub's local_files_only lookup, so air-gapped servers work from a copied cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from personalization.backends.base import BackendError

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hf_cache_dir() -> Path:
    """The hub cache, read from the environment at call time (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def resolve_model_dir(model_id: str, *, revision: str = "", missing_hint: str = "") -> tuple[Path, str]:
    """Return (folder, revision). For a cached Hub id the revision is the snapshot's commit hash."""
    hint = f"; {missing_hint}" if missing_hint else ""
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"model folder {path} has no config.json; it is not a Hugging Face model folder{hint}")
        return path, revision
    if not HUB_ID.fullmatch(model_id) or model_id.startswith(("/", ".", "~")):
        raise BackendError(f"model folder {path} does not exist{hint}")
    from huggingface_hub import snapshot_download

    cache = hf_cache_dir()
    try:
        folder = snapshot_download(
            repo_id=model_id, revision=revision or None, cache_dir=str(cache), local_files_only=True
        )
    except Exception as exc:  # huggingface_hub raises several unrelated types for "not cached"
        raise BackendError(
            f"model {model_id!r} (revision {revision or 'main'}) is not in the Hugging Face cache at {cache}; "
            f"copy its snapshot there or set model_id to a local folder ({type(exc).__name__}: {exc}){hint}"
        ) from exc
    return Path(folder), Path(folder).name
