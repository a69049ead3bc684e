"""Fixtures of the pipeline tests: the tiny random model, a test double backend, a small study."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from personalization.backends import registry
from personalization.backends.base import Chat, Generation, GenerationParams, ModelIdentity
from personalization.models import Attribute, Conversation, Prompt, RegisteredModel, Study, Subject, SubjectPrompt, Turn
from tests.model_fixtures import build_tiny_chat_model, register_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tiny_model(db: None, tiny_model_dir: Path) -> RegisteredModel:
    registry.clear_cache()
    row = register_tiny_model("tiny", tiny_model_dir)
    yield row
    registry.clear_cache()


class ScriptedBackend:
    """A ChatBackend test double: answers come from `reply(chat)`; records every call.

    Lives in the tests only: product code never fakes model output.
    """

    def __init__(self, reply: Callable[[Chat], str], scores: Callable[[Chat, str], float] | None = None) -> None:
        self.identity = ModelIdentity(name="scripted", backend="hf_local", model_id="scripted", revision="1")
        self.reply = reply
        self.scores = scores or (lambda chat, choice: -1.0 if "YES" in choice or "1" in choice else -2.0)
        self.generate_calls: list[int] = []
        self.choice_calls: list[int] = []

    def generate(self, chats: list[Chat], params: GenerationParams) -> list[Generation]:
        self.generate_calls.append(len(chats))
        out = []
        for chat in chats:
            text = self.reply(chat)
            out.append(Generation(text=text, prompt_tokens=10, completion_tokens=max(1, len(text.split()))))
        return out

    def choice_logprobs(self, chats: list[Chat], choices: list[str]) -> list[dict[str, float]]:
        self.choice_calls.append(len(chats))
        return [{choice: self.scores(chat, choice) for choice in choices} for chat in chats]


@pytest.fixture
def scripted(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ScriptedBackend]]:
    """Registers a model named "scripted" whose backend is a ScriptedBackend built by the test."""
    RegisteredModel.objects.create(name="scripted", backend="hf_local", model_id="scripted", revision="1")
    registry.clear_cache()
    holder: dict[str, ScriptedBackend] = {}
    real_build = registry.build_chat_backend

    def build(spec: registry.ModelSpec) -> object:
        return holder["backend"] if spec.name == "scripted" else real_build(spec)

    monkeypatch.setattr(registry, "build_chat_backend", build)

    def install(reply: Callable[[Chat], str], scores: Callable[[Chat, str], float] | None = None) -> ScriptedBackend:
        registry.clear_cache()
        holder["backend"] = ScriptedBackend(reply, scores)
        return holder["backend"]

    yield install
    registry.clear_cache()


GOOD_EXTRACTION = json.dumps(
    [
        {
            "attribute": "The user is vegetarian",
            "reason": "asks for meatless meals",
            "confidence": 0.9,
            "evidence_turns": [0],
        },
        {
            "attribute": "The user works night shifts",
            "reason": "mentions shifts",
            "confidence": 0.7,
            "evidence_turns": [0, 7],
        },
    ]
)


@pytest.fixture
def small_study(study: Study) -> Study:
    """Two subjects with two conversations each, imported merged attributes, three prompts, pairs."""
    for s in range(2):
        subject = Subject.objects.create(study=study, external_id=f"s{s}", source="test")
        for c in range(2):
            conversation = Conversation.objects.create(subject=subject, conversation_hash=f"h{s}{c}")
            Turn.objects.create(
                conversation=conversation,
                index=0,
                role="user",
                content="I am a vegetarian nurse on night shifts. What can I cook?",
            )
            Turn.objects.create(conversation=conversation, index=1, role="assistant", content="Try a lentil stew.")
        for text in ("Is vegetarian", "Works night shifts"):
            Attribute.objects.create(subject=subject, text=f"{text} ({s})", reason="said so", confidence=0.8)
    prompts = [
        Prompt.objects.create(study=study, text=f"Suggest a dinner for day {n}.", source="test") for n in range(3)
    ]
    for subject in study.subjects.all():
        for prompt in prompts[:2]:
            SubjectPrompt.objects.create(subject=subject, prompt=prompt)
    return study
