"""The contract every model backend fulfils.

Adding a backend means copying a sibling module (hf_local.py, openai_compat.py) and
registering it in registry.py. Pipeline steps only ever see these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# A chat is a list of {"role": "system"|"user"|"assistant", "content": str} messages.
Chat = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    seed: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelIdentity:
    """What gets stored on a ModelRun so its outputs can be traced and reproduced."""

    name: str  # registry name
    backend: str
    model_id: str
    revision: str


class ChatBackend(Protocol):
    identity: ModelIdentity

    def generate(self, chats: list[Chat], params: GenerationParams) -> list[Generation]:
        """Generate one completion per chat, batched as the backend sees fit. Order is preserved."""
        ...

    def choice_logprobs(self, chats: list[Chat], choices: list[str]) -> list[dict[str, float]]:
        """For each chat, the log-probability of each choice as the assistant's next answer.

        Small models rarely follow "answer YES or NO" in free text; scoring the choices always
        yields a decision.
        """
        ...


class Embedder(Protocol):
    identity: ModelIdentity

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-normalised embeddings, one per text."""
        ...


class BackendError(Exception):
    """A backend could not produce output (model missing, server unreachable).

    `transient` tells the task layer whether retrying later can help (a server hiccup) or
    not (a model folder that does not exist).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def storable_text(text: str) -> str:
    """Model text made safe to store: PostgreSQL text columns cannot hold NUL, and a model (or
    the random test model) can emit one."""
    return text.replace("\x00", "\ufffd")
