"""The named-model registry: built-ins, RegisteredModel overrides, roles and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalization.backends import registry
from personalization.backends.base import BackendError, GenerationParams
from personalization.backends.hf_local import HFLocalBackend
from personalization.models import RegisteredModel
from tests.model_fixtures import register_tiny_model

pytestmark = pytest.mark.django_db


def test_default_roles_come_from_settings(settings) -> None:
    settings.ATTUNE_DEFAULT_GENERATOR = "smollm2-135m"
    settings.ATTUNE_DEFAULT_EMBEDDER = "minilm-l6"
    assert registry.model_spec(None).name == "smollm2-135m"
    assert registry.model_spec("", role="generator").name == "smollm2-135m"
    assert registry.model_spec(None, role="embedder").name == "minilm-l6"


def test_site_default_can_be_a_registered_model(settings, tiny_model_dir: Path) -> None:
    register_tiny_model("tiny", tiny_model_dir)
    settings.ATTUNE_DEFAULT_GENERATOR = "tiny"
    spec = registry.model_spec(None)
    assert (spec.name, spec.backend, spec.model_id) == ("tiny", "hf_local", str(tiny_model_dir))


def test_builtin_smollm2_points_at_the_converted_folder(settings, tmp_path: Path) -> None:
    settings.ATTUNE_MODELS_DIR = tmp_path
    spec = registry.model_spec("smollm2-135m")
    assert spec.backend == "hf_local"
    assert spec.model_id == str(tmp_path / "smollm2-135m-instruct")
    assert spec.revision.startswith("b179c952")
    assert spec.backend_options() == {"batch_size": 16, "threads": 1}
    assert spec.identity.revision == spec.revision


def test_builtin_minilm_uses_the_package_folder() -> None:
    spec = registry.model_spec("minilm-l6", role="embedder")
    assert spec.backend == "sentence_transformers"
    assert Path(spec.model_id).joinpath("modules.json").is_file()


def test_unknown_model_lists_the_known_names(tiny_model_dir: Path) -> None:
    register_tiny_model("tiny", tiny_model_dir)
    with pytest.raises(BackendError, match=r"unknown model 'nope'; known: minilm-l6, smollm2-135m, tiny"):
        registry.model_spec("nope")


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(BackendError, match="unknown model role 'judge'"):
        registry.model_spec(None, role="judge")


def test_registered_model_overrides_a_builtin(tiny_model_dir: Path) -> None:
    register_tiny_model("smollm2-135m", tiny_model_dir)
    spec = registry.model_spec("smollm2-135m")
    assert spec.model_id == str(tiny_model_dir)
    names = [item.name for item in registry.available_models()]
    assert names == sorted(set(names)) and "smollm2-135m" in names and "minilm-l6" in names
    overridden = next(item for item in registry.available_models() if item.name == "smollm2-135m")
    assert overridden.model_id == str(tiny_model_dir)


def test_chat_backend_is_built_once_per_process(tiny_model_dir: Path) -> None:
    register_tiny_model("tiny", tiny_model_dir)
    backend = registry.chat_backend("tiny")
    assert isinstance(backend, HFLocalBackend)
    assert registry.chat_backend("tiny") is backend
    assert backend.batch_size == 4
    assert backend.identity.name == "tiny" and backend.identity.revision == "tiny-test-model"
    outputs = backend.generate([[{"role": "user", "content": "hi"}]], registry.model_spec("tiny").generation_params())
    assert len(outputs) == 1 and outputs[0].completion_tokens <= 16


def test_changing_a_row_gives_a_new_backend(tiny_model_dir: Path) -> None:
    row = register_tiny_model("tiny", tiny_model_dir)
    first = registry.chat_backend("tiny")
    row.default_params = {"batch_size": 2}
    row.save()
    second = registry.chat_backend("tiny")
    assert second is not first and second.batch_size == 2


def test_missing_default_model_tells_the_user_to_run_prepare_models(settings, tmp_path: Path) -> None:
    settings.ATTUNE_MODELS_DIR = tmp_path / "empty"
    with pytest.raises(
        BackendError, match=r"smollm2-135m-instruct does not exist; run `python manage.py prepare_models`"
    ):
        registry.chat_backend(None)


def test_roles_do_not_mix(tiny_model_dir: Path) -> None:
    register_tiny_model("tiny", tiny_model_dir)
    with pytest.raises(BackendError, match="'minilm-l6' is an embedding model"):
        registry.chat_backend("minilm-l6")
    with pytest.raises(BackendError, match="'tiny' is a chat model"):
        registry.embedder("tiny")


def test_generation_params_merge_model_defaults_and_run_overrides() -> None:
    spec = registry.ModelSpec(
        name="x", backend="hf_local", model_id="/m", revision="", default_params={"max_new_tokens": 64, "batch_size": 2}
    )
    assert spec.generation_params() == GenerationParams(max_new_tokens=64)
    assert spec.generation_params(max_new_tokens=8, seed=3) == GenerationParams(max_new_tokens=8, seed=3)
    assert spec.backend_options() == {"batch_size": 2}
    with pytest.raises(BackendError, match=r"unknown generation parameter\(s\) \['beams'\]"):
        spec.generation_params(beams=2)


def test_unknown_backend_is_named() -> None:
    RegisteredModel.objects.create(name="odd", backend="ollama", model_id="x")
    with pytest.raises(BackendError, match="'odd' has unknown backend 'ollama'"):
        registry.chat_backend("odd")


def test_spec_problems_explain_what_would_fail(settings, tiny_model_dir: Path, tmp_path: Path) -> None:
    settings.ATTUNE_OPENAI_SERVERS = {"gpu1": "http://127.0.0.1:8000/v1"}
    good = registry.ModelSpec(name="t", backend="hf_local", model_id=str(tiny_model_dir), revision="")
    assert registry.spec_problems(good) == []
    remote = registry.ModelSpec(name="r", backend="openai", model_id="m", revision="", server="gpu2")
    assert registry.spec_problems(remote) == ["server 'gpu2' is not in settings ATTUNE_OPENAI_SERVERS (known: gpu1)"]
    missing = registry.ModelSpec(
        name="m", backend="hf_local", model_id=str(tmp_path / "nope"), revision="", default_params={"beams": 2}
    )
    problems = registry.spec_problems(missing)
    assert len(problems) == 2 and "does not exist" in problems[0] and "unknown key(s) ['beams']" in problems[1]
