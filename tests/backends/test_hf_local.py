"""HFLocalBackend through the real transformers code path, on the tiny random model."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from personalization.backends import hf_local
from personalization.backends.base import BackendError, GenerationParams
from personalization.backends.hf_local import HFLocalBackend


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


CHATS = [chat("hi"), chat("tell me about the sea " * 6), chat("vegetarian food"), chat("a " * 15), chat("?")]


def test_generate_keeps_order_and_counts_tokens(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir), name="tiny", batch_size=2)
    outputs = backend.generate(CHATS, GenerationParams(max_new_tokens=6))
    assert len(outputs) == len(CHATS)
    expected_prompt_tokens = backend.count_prompt_tokens(CHATS)
    assert [out.prompt_tokens for out in outputs] == expected_prompt_tokens
    # Prompts of different lengths must be reported per chat, not per padded batch.
    assert len(set(expected_prompt_tokens)) > 1
    for out in outputs:
        assert 1 <= out.completion_tokens <= 6
        assert out.extra["finish_reason"] in {"stop", "length"}
        assert isinstance(out.text, str)


def test_generate_in_reversed_order_gives_the_same_outputs_per_chat(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir), batch_size=8)
    forward = backend.generate(CHATS, GenerationParams(max_new_tokens=5))
    backward = backend.generate(CHATS[::-1], GenerationParams(max_new_tokens=5))
    assert [out.text for out in forward] == [out.text for out in backward[::-1]]


def test_greedy_generation_is_deterministic(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir), batch_size=4)
    params = GenerationParams(max_new_tokens=8, temperature=0.0)
    assert backend.generate(CHATS, params) == backend.generate(CHATS, params)


def test_seeded_sampling_repeats_with_the_same_seed(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir), batch_size=4)
    params = GenerationParams(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=7)
    assert backend.generate(CHATS, params) == backend.generate(CHATS, params)


def test_generate_of_no_chats_is_empty(tiny_model_dir: Path) -> None:
    assert HFLocalBackend(str(tiny_model_dir)).generate([], GenerationParams()) == []


def test_generate_rejects_a_prompt_longer_than_the_context(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir))
    too_long = chat("sea " * 1200)
    with pytest.raises(BackendError, match=r"chat 1 of the batch has \d+ prompt tokens") as caught:
        backend.generate([chat("hi"), too_long], GenerationParams(max_new_tokens=4))
    assert not caught.value.transient


def test_choice_logprobs_are_finite_log_probabilities(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir), batch_size=3)
    choices = ["YES", "NO", "makes_sense"]
    scores = backend.choice_logprobs(CHATS, choices)
    assert len(scores) == len(CHATS)
    for row in scores:
        assert list(row) == choices
        assert all(math.isfinite(value) and value <= 0 for value in row.values())


def test_choice_logprobs_match_a_plain_forward_pass(tiny_model_dir: Path) -> None:
    """Batching with left padding and kept-logits only must not change the numbers."""
    backend = HFLocalBackend(str(tiny_model_dir), batch_size=4)
    choices = ["YES", " NO", "makes_sense", "a", "ab", " 1", " 2"]
    loaded = backend.loaded
    lengths = [len(loaded.tokenizer(choice, add_special_tokens=False)["input_ids"]) for choice in choices]
    # Single- and multi-token choices, and choices sharing a prefix, all go through the prefix tree.
    assert 1 in lengths and max(lengths) > 1
    batched = backend.choice_logprobs(CHATS, choices)
    for index, conversation in enumerate(CHATS):
        prompt = loaded.tokenizer(backend.prompt_text(conversation), add_special_tokens=False)["input_ids"]
        assert list(batched[index]) == choices
        for choice in choices:
            ids = loaded.tokenizer(choice, add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = loaded.model(input_ids=torch.tensor([prompt + ids])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            expected = sum(float(logprobs[len(prompt) - 1 + k, token]) for k, token in enumerate(ids))
            assert batched[index][choice] == pytest.approx(expected, abs=1e-4)


def test_choice_logprobs_continue_a_final_assistant_message(tiny_model_dir: Path) -> None:
    backend = HFLocalBackend(str(tiny_model_dir))
    prefixed = chat("Is the sky blue?") + [{"role": "assistant", "content": "Answer:"}]
    text = backend.prompt_text(prefixed)
    assert text.endswith("<|im_start|>assistant\nAnswer:")
    assert backend.choice_logprobs([prefixed], [" YES", " NO"])[0].keys() == {" YES", " NO"}


def test_choice_logprobs_reject_empty_choices(tiny_model_dir: Path) -> None:
    with pytest.raises(BackendError, match="choices must be non-empty"):
        HFLocalBackend(str(tiny_model_dir)).choice_logprobs(CHATS, ["YES", ""])


def test_missing_folder_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"does-not-exist does not exist; run prepare_models") as caught:
        HFLocalBackend(str(tmp_path / "does-not-exist"), missing_hint="run prepare_models")
    assert not caught.value.transient


def test_folder_without_config_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="has no config.json"):
        HFLocalBackend(str(tmp_path / "empty"))


def test_loaded_models_are_cached_per_process_with_a_small_lru(tiny_model_dir: Path, tmp_path: Path) -> None:
    hf_local.unload_all()
    copies = []
    for name in ("one", "two"):
        copy = tmp_path / name
        shutil.copytree(tiny_model_dir, copy)
        copies.append(copy)
    first = HFLocalBackend(str(tiny_model_dir)).loaded
    assert HFLocalBackend(str(tiny_model_dir)).loaded is first
    for copy in copies:
        assert HFLocalBackend(str(copy)).loaded is not first
    assert len(hf_local._loaded) == hf_local.LOADED_MODELS_MAX
    # The least recently used model (the first) was evicted, so asking again loads it anew.
    assert HFLocalBackend(str(tiny_model_dir)).loaded is not first
    hf_local.unload_all()


def make_hub_cache(home: Path, tiny_model_dir: Path, repo: str, commit: str) -> Path:
    org, name = repo.split("/")
    repo_dir = home / "hub" / f"models--{org}--{name}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_model_dir, repo_dir / "snapshots" / commit)
    return repo_dir


def test_hub_style_id_loads_from_the_local_cache_offline(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    make_hub_cache(tmp_path / "hf", tiny_model_dir, "attune-test/tiny-chat", commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = HFLocalBackend("attune-test/tiny-chat", name="tiny-hub")
    assert backend.identity.revision == commit
    assert backend.folder == tmp_path / "hf" / "hub" / "models--attune-test--tiny-chat" / "snapshots" / commit
    assert len(backend.generate([chat("hi")], GenerationParams(max_new_tokens=3))) == 1
    pinned = HFLocalBackend("attune-test/tiny-chat", revision=commit)
    assert pinned.folder == backend.folder


def test_hub_style_id_not_in_the_cache_is_a_clear_error(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_hub_cache(tmp_path / "hf", tiny_model_dir, "attune-test/tiny-chat", "a" * 40)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match=r"'attune-test/other' \(revision main\) is not in the Hugging Face cache"):
        HFLocalBackend("attune-test/other")
    with pytest.raises(BackendError, match=r"revision " + "b" * 40):
        HFLocalBackend("attune-test/tiny-chat", revision="b" * 40)


def test_generated_text_never_contains_nul(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL cannot store NUL in text; the random model can emit the byte."""
    backend = HFLocalBackend(str(tiny_model_dir))
    monkeypatch.setattr(type(backend.loaded.tokenizer), "decode", lambda self, ids, **kwargs: "a\x00b")
    assert backend.generate([chat("hi")], GenerationParams(max_new_tokens=2))[0].text == "a\ufffdb"


def test_thread_count_is_applied_when_configured(tiny_model_dir: Path) -> None:
    before = torch.get_num_threads()
    try:
        HFLocalBackend(str(tiny_model_dir), threads=1).generate([chat("hi")], GenerationParams(max_new_tokens=2))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(BackendError, match="threads must be at least 1"):
        HFLocalBackend(str(tiny_model_dir), threads=0)
