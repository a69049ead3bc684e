"""OpenAICompatBackend against a stub OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import math
import socket

import pytest

from personalization.backends.base import BackendError, GenerationParams
from personalization.backends.openai_compat import OpenAICompatBackend, score_choices
from personalization.backends.registry import chat_backend
from personalization.models import RegisteredModel
from tests.backends.conftest import StubServer


def backend(model_id: str = "ok", *, server: str = "stub", retries: int = 0) -> OpenAICompatBackend:
    return OpenAICompatBackend(server=server, model_id=model_id, name="remote", retries=retries, timeout=5)


@pytest.fixture
def stub_settings(settings, stub_server: StubServer):  # type: ignore[no-untyped-def]
    settings.ATTUNE_OPENAI_SERVERS = {"stub": stub_server.base_url}
    settings.ATTUNE_OPENAI_API_KEY = ""
    return settings


def test_generate_posts_each_chat_and_keeps_order(stub_settings, stub_server: StubServer) -> None:
    chats = [[{"role": "user", "content": f"question {i}"}] for i in range(12)]
    outputs = backend().generate(chats, GenerationParams(max_new_tokens=33, temperature=0.5, top_p=0.9, seed=4))
    assert [out.text for out in outputs] == [f"echo: question {i}" for i in range(12)]
    assert all(out.prompt_tokens == 2 and out.completion_tokens == 2 for out in outputs)
    assert outputs[0].extra == {"finish_reason": "stop"}
    assert len(stub_server.requests) == 12
    sent = stub_server.requests[0]["body"]
    assert sent["model"] == "ok"
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["seed"]) == (33, 0.5, 0.9, 4)
    assert "Authorization" not in stub_server.requests[0]["headers"]


def test_api_key_from_settings_is_sent_as_bearer_token(stub_settings, stub_server: StubServer) -> None:
    stub_settings.ATTUNE_OPENAI_API_KEY = "sk-test-123"
    backend().generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert stub_server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"


def test_choice_logprobs_read_top_logprobs_with_a_floor(stub_settings, stub_server: StubServer) -> None:
    scores = backend().choice_logprobs([[{"role": "user", "content": "yes or no?"}]] * 2, ["YES", "NO", "PERHAPS"])
    assert len(scores) == 2
    row = scores[0]
    # "YES" and " YES" are the same answer: their probabilities add up.
    assert row["YES"] == pytest.approx(-0.4 + math.log(1 + math.exp(-1.6)))
    assert row["NO"] == pytest.approx(-1.2)
    # Not listed: below the least likely listed token, so it never beats a listed choice.
    assert row["PERHAPS"] == pytest.approx(-4.5)
    sent = stub_server.requests[0]["body"]
    assert sent["max_tokens"] == 1 and sent["logprobs"] is True and sent["top_logprobs"] == 20
    assert "continue_final_message" not in sent


def test_a_final_assistant_message_is_sent_as_a_prefix_to_continue(stub_settings, stub_server: StubServer) -> None:
    cued = [{"role": "user", "content": "yes or no?"}, {"role": "assistant", "content": "Answer:"}]
    backend().choice_logprobs([cued], ["YES", "NO"])
    sent = stub_server.requests[0]["body"]
    assert sent["messages"] == cued
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False


def test_score_choices_uses_prefix_tokens_for_split_choices() -> None:
    scores = score_choices([("make", -0.5), ("may", -1.0), ("doesn", -2.0)], ["makes_sense", "maybe", "doesnt"])
    assert scores == {"makes_sense": -0.5, "maybe": -1.0, "doesnt": -2.0}


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_transient(stub_settings, status: int) -> None:
    with pytest.raises(BackendError, match=f"answered {status}") as caught:
        backend(f"status-{status}").generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert caught.value.transient


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_permanent(stub_settings, status: int) -> None:
    with pytest.raises(BackendError, match=f"answered {status}") as caught:
        backend(f"status-{status}").generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert not caught.value.transient


@pytest.mark.parametrize(("model", "message"), [("bad-json", "malformed JSON"), ("no-choices", "without choices")])
def test_malformed_answers_are_permanent(stub_settings, model: str, message: str) -> None:
    with pytest.raises(BackendError, match=message) as caught:
        backend(model).generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert not caught.value.transient


def test_logprobs_missing_from_the_answer_is_permanent(stub_settings) -> None:
    with pytest.raises(BackendError, match="top_logprobs") as caught:
        backend("no-choices").choice_logprobs([[{"role": "user", "content": "hi"}]], ["YES"])
    assert not caught.value.transient


def test_unreachable_server_is_transient(settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ATTUNE_OPENAI_SERVERS = {"gone": f"http://127.0.0.1:{port}/v1"}
    with pytest.raises(BackendError, match="unreachable") as caught:
        backend(server="gone").generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert caught.value.transient


def test_transient_errors_are_retried_a_bounded_number_of_times(stub_settings, stub_server, monkeypatch) -> None:
    monkeypatch.setattr("personalization.backends.openai_compat.RETRY_BACKOFF_SECONDS", 0.0)
    with pytest.raises(BackendError):
        backend("status-503", retries=2).generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert len(stub_server.requests) == 3
    stub_server.requests.clear()
    with pytest.raises(BackendError):
        backend("status-400", retries=2).generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert len(stub_server.requests) == 1


def test_the_url_comes_only_from_settings(stub_settings, stub_server: StubServer, db: None) -> None:
    """A RegisteredModel names a server; a URL in the row is just an unknown server name."""
    RegisteredModel.objects.create(name="remote", backend="openai", model_id="ok", server="stub")
    RegisteredModel.objects.create(name="sneaky", backend="openai", model_id="ok", server="http://127.0.0.1:9/v1")
    remote = chat_backend("remote")
    assert remote.base_url == stub_server.base_url
    remote.generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    assert stub_server.requests[0]["path"] == "/v1/chat/completions"
    with pytest.raises(BackendError, match=r"server 'http://127.0.0.1:9/v1' is not in settings ATTUNE_OPENAI_SERVERS"):
        chat_backend("sneaky")


def test_unknown_server_lists_the_configured_ones(stub_settings) -> None:
    with pytest.raises(BackendError, match=r"'gpu9' is not in settings ATTUNE_OPENAI_SERVERS \(known: stub\)"):
        backend(server="gpu9")
