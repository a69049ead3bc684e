"""Local causal language models through Hugging Face transformers.

Weights are loaded once per process and kept in a small LRU, so a Celery worker that serves
many batches pays the load once. CPU by default; CUDA when torch sees a GPU.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalization.backends.base import (
    BackendError,
    Chat,
    Generation,
    GenerationParams,
    ModelIdentity,
    storable_text,
)
from personalization.backends.local_files import resolve_model_dir

logger = logging.getLogger(__name__)

LOADED_MODELS_MAX = 2


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    eos_token_ids: list[int]
    context_length: int
    load_seconds: float


_loaded: OrderedDict[tuple[str, str, str], LoadedModel] = OrderedDict()
_load_lock = threading.Lock()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(folder: Path, *, device: str, dtype: str = "auto") -> LoadedModel:
    """Load (or fetch from the per-process LRU) a model and its tokenizer."""
    key = (str(folder), device, dtype)
    with _load_lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
        loaded = _load_uncached(folder, device=device, dtype=dtype)
        _loaded[key] = loaded
        while len(_loaded) > LOADED_MODELS_MAX:
            evicted, _ = _loaded.popitem(last=False)
            logger.info("unloaded model %s to stay within %d loaded models", evicted[0], LOADED_MODELS_MAX)
        return loaded


def _load_uncached(folder: Path, *, device: str, dtype: str) -> LoadedModel:

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    # Per-tensor progress bars would flood worker logs on every load.
    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        torch_dtype: Any = dtype if dtype == "auto" else getattr(torch, dtype)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(f"could not load the model in {folder}: {exc}") from exc
    model.to(device)  # type: ignore[arg-type]  # transformers' decorator hides Module.to's signature
    model.eval()
    if not tokenizer.chat_template:
        raise BackendError(f"the tokenizer in {folder} has no chat_template; add one to tokenizer_config.json")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    if not eos_ids:
        raise BackendError(f"the model in {folder} defines no end-of-sequence token")
    context = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    seconds = time.perf_counter() - started
    logger.info("loaded model %s on %s in %.1f s", folder, device, seconds)
    return LoadedModel(model, tokenizer, device, eos_ids, context, seconds)


def unload_all() -> None:
    with _load_lock:
        _loaded.clear()


class HFLocalBackend:
    """ChatBackend for a local Hugging Face folder or a cached Hub id (never downloads)."""

    def __init__(
        self,
        model_id: str,
        *,
        revision: str = "",
        name: str = "",
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        missing_hint: str = "",
    ) -> None:
        if batch_size < 1:
            raise BackendError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise BackendError(f"threads must be at least 1, got {threads}")
        # Resolving the folder is cheap and fails early with a clear message; weights load lazily.
        self.folder, resolved_revision = resolve_model_dir(model_id, revision=revision, missing_hint=missing_hint)
        self.identity = ModelIdentity(
            name=name or model_id, backend="hf_local", model_id=model_id, revision=resolved_revision or revision
        )
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.threads = threads

    def _use_threads(self) -> None:
        """Apply this model's CPU thread count (torch's setting is per process, models share it).

        On a busy 2-core machine, two OpenMP threads that spin-wait for each other decoded
        SmolLM2 at 2 tokens/s where one thread did 19: small models run best on one.
        """
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    @property
    def loaded(self) -> LoadedModel:
        return load_model(self.folder, device=self.device or default_device(), dtype=self.dtype)

    def prompt_text(self, chat: Chat) -> str:
        """The chat rendered with the model's own template, ready for the assistant's answer.

        A chat ending with an assistant message is continued rather than answered, so callers
        can put words in the model's mouth ("Answer:") and score what follows.
        """
        tokenizer = self.loaded.tokenizer
        if chat and chat[-1].get("role") == "assistant":
            return tokenizer.apply_chat_template(chat, tokenize=False, continue_final_message=True)
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def count_prompt_tokens(self, chats: list[Chat]) -> list[int]:
        tokenizer = self.loaded.tokenizer
        return [len(tokenizer(self.prompt_text(chat), add_special_tokens=False)["input_ids"]) for chat in chats]

    def generate(self, chats: list[Chat], params: GenerationParams) -> list[Generation]:
        import torch

        if not chats:
            return []
        if params.max_new_tokens < 1:
            raise BackendError(f"max_new_tokens must be at least 1, got {params.max_new_tokens}")
        loaded = self.loaded
        self._use_threads()
        tokenizer, model = loaded.tokenizer, loaded.model
        encoded = [tokenizer(self.prompt_text(chat), add_special_tokens=False)["input_ids"] for chat in chats]
        for index, ids in enumerate(encoded):
            if len(ids) + params.max_new_tokens > loaded.context_length:
                raise BackendError(
                    f"chat {index} of the batch has {len(ids)} prompt tokens; with max_new_tokens="
                    f"{params.max_new_tokens} it exceeds the model's context of {loaded.context_length} tokens"
                )
        # Batch chats of similar length together: less padding, same outputs, order restored below.
        order = sorted(range(len(chats)), key=lambda i: len(encoded[i]))
        results: list[Generation | None] = [None] * len(chats)
        sampling = params.temperature > 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            input_ids, attention = _left_pad([encoded[i] for i in batch], tokenizer.pad_token_id, loaded.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "do_sample": sampling,
                "pad_token_id": tokenizer.pad_token_id,
                "eos_token_id": loaded.eos_token_ids,
            }
            if sampling:
                kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
                # Seeded per batch: the same chats, batch size and seed give the same samples.
                torch.manual_seed(params.seed)
            else:
                # The checkpoint's generation_config may carry sampling defaults; greedy ignores them.
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                output = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
            new_tokens = output[:, input_ids.shape[1] :].tolist()
            for row, index in enumerate(batch):
                tokens = new_tokens[row]
                length = len(tokens)
                finish = "length"
                for position, token in enumerate(tokens):
                    if token in loaded.eos_token_ids:
                        length, finish = position + 1, "stop"
                        break
                results[index] = Generation(
                    text=storable_text(tokenizer.decode(tokens[:length], skip_special_tokens=True)),
                    prompt_tokens=len(encoded[index]),
                    completion_tokens=length,
                    extra={"finish_reason": finish},
                )
        return [result for result in results if result is not None]

    def choice_logprobs(self, chats: list[Chat], choices: list[str]) -> list[dict[str, float]]:
        """Sum of the token log-probabilities of each choice right after the chat's prompt.

        Choices are tokenized and laid out as a prefix tree. Each batch of prompts goes through
        the model once; every deeper branch (" Y" of " YES", the space before " 1".." 5") then
        costs a few tokens on top of the prompts' key/value cache, not another pass over the
        prompts. Logits are computed for the last position only.
        """
        import copy

        import torch

        if not chats:
            return []
        if not choices or any(not choice for choice in choices):
            raise BackendError(f"choices must be non-empty strings, got {choices!r}")
        loaded = self.loaded
        self._use_threads()
        tokenizer, model = loaded.tokenizer, loaded.model
        choice_ids = [tuple(tokenizer(choice, add_special_tokens=False)["input_ids"]) for choice in choices]
        branches: dict[tuple[int, ...], set[int]] = {}
        for ids in choice_ids:
            for depth in range(len(ids)):
                branches.setdefault(ids[:depth], set()).add(ids[depth])
        deeper = sorted(prefix for prefix in branches if prefix)
        longest_choice = max(len(ids) for ids in choice_ids)
        prompts = [tokenizer(self.prompt_text(chat), add_special_tokens=False)["input_ids"] for chat in chats]
        for index, ids in enumerate(prompts):
            if len(ids) + longest_choice > loaded.context_length:
                raise BackendError(
                    f"chat {index} has {len(ids)} prompt tokens; with its longest choice it exceeds the model's "
                    f"context of {loaded.context_length} tokens"
                )
        order = sorted(range(len(chats)), key=lambda c: len(prompts[c]))
        # edge[c][path]: log-probability of the path's last token after prompt c + the path's prefix.
        edge: list[dict[tuple[int, ...], float]] = [{} for _ in chats]

        def record(batch: list[int], prefix: tuple[int, ...], logits: Any) -> None:
            logprobs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
            for row, c in enumerate(batch):
                for token in branches[prefix]:
                    edge[c][(*prefix, token)] = float(logprobs[row, token])

        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            input_ids, attention = _left_pad([prompts[c] for c in batch], tokenizer.pad_token_id, loaded.device)
            # Left padding shifts real tokens right; positions must count real tokens only.
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = model(
                    input_ids=input_ids,
                    attention_mask=attention,
                    position_ids=positions,
                    use_cache=bool(deeper),
                    logits_to_keep=1,
                )
                record(batch, (), out.logits)
                for number, prefix in enumerate(deeper):
                    # The last branch may extend the prompts' cache in place; the others work on a copy.
                    cache = out.cache if number == len(deeper) - 1 else copy.deepcopy(out.cache)
                    extra = torch.tensor([list(prefix)] * len(batch), dtype=torch.long, device=loaded.device)
                    offsets = torch.arange(1, len(prefix) + 1, device=loaded.device)
                    extended = model(
                        input_ids=extra,
                        attention_mask=torch.cat([attention, torch.ones_like(extra)], dim=1),
                        position_ids=positions[:, -1:] + offsets,
                        cache=cache,
                        use_cache=True,
                        logits_to_keep=1,
                    )
                    record(batch, prefix, extended.logits)
        scores: list[dict[str, float]] = []
        for c in range(len(chats)):
            row: dict[str, float] = {}
            for choice, ids in zip(choices, choice_ids, strict=True):
                total = sum(edge[c][ids[: depth + 1]] for depth in range(len(ids)))
                row[choice] = total if math.isfinite(total) else -math.inf
            scores.append(row)
        return scores


def _left_pad(sequences: list[list[int]], pad_id: int, device: str) -> tuple[Any, Any]:
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)
