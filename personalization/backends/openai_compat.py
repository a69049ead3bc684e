"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server, TGI) over HTTP.

The base URL is looked up by server name in settings.ATTUNE_OPENAI_SERVERS, which only an
administrator sets: a study or a RegisteredModel row names a server, never a URL, so no user
can make the app send requests to a host of their choosing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import requests.adapters
from django.conf import settings

from personalization.backends.base import (
    BackendError,
    Chat,
    Generation,
    GenerationParams,
    ModelIdentity,
    storable_text,
)

logger = logging.getLogger(__name__)

RETRY_BACKOFF_SECONDS = 0.5
# How far below the least likely listed token a choice missing from top_logprobs is put: it
# is at most that likely, and a listed choice must always win over an unlisted one.
UNLISTED_CHOICE_MARGIN = 1.0


def server_url(server: str) -> str:
    servers: dict[str, str] = getattr(settings, "ATTUNE_OPENAI_SERVERS", {}) or {}
    if server not in servers:
        known = ", ".join(sorted(servers)) or "none configured"
        raise BackendError(
            f"OpenAI-compatible server {server!r} is not in settings ATTUNE_OPENAI_SERVERS (known: {known}); "
            "an administrator sets ATTUNE_OPENAI_SERVERS='name=http://host:port/v1'"
        )
    return servers[server].rstrip("/")


class OpenAICompatBackend:
    """ChatBackend over POST {base_url}/chat/completions, one request per chat, a bounded pool."""

    def __init__(
        self,
        *,
        server: str,
        model_id: str,
        revision: str = "",
        name: str = "",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 2,
        top_k: int = 20,
    ) -> None:
        if max_concurrency < 1:
            raise BackendError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.server = server
        self.base_url = server_url(server)
        self.model_id = model_id
        self.identity = ModelIdentity(name=name or model_id, backend="openai", model_id=model_id, revision=revision)
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = max(0, retries)
        self.top_k = top_k
        self.session = requests.Session()
        # One pooled connection per concurrent request, so the pool never drops connections.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max_concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        api_key = getattr(settings, "ATTUNE_OPENAI_API_KEY", "")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with a few quick retries on transient failures; the task layer retries beyond that."""
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                return self._post_once(url, payload)
            except BackendError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
            attempt += 1
            time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))

    def _post_once(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.session.post(url, data=json.dumps(payload), headers=self._headers(), timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise BackendError(f"server {self.server!r} unreachable at {url}: {exc}", transient=True) from exc
        except requests.RequestException as exc:
            raise BackendError(f"request to server {self.server!r} at {url} failed: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise BackendError(
                f"server {self.server!r} answered {response.status_code} at {url}: {response.text[:300]}",
                transient=True,
            )
        if response.status_code >= 400:
            raise BackendError(
                f"server {self.server!r} answered {response.status_code} at {url}: {response.text[:300]}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendError(
                f"server {self.server!r} sent malformed JSON from {url}: {response.text[:200]!r}"
            ) from exc
        if not isinstance(body, dict):
            raise BackendError(f"server {self.server!r} sent a JSON {type(body).__name__}, not an object, from {url}")
        return body

    def _chat_payload(self, chat: Chat, **fields: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model_id, "messages": chat, **fields}
        if chat and chat[-1].get("role") == "assistant":
            # A final assistant message is a prefix for the model to continue ("Answer:"). vLLM
            # and SGLang need these two fields for that; llama.cpp's server continues by itself.
            payload.update(continue_final_message=True, add_generation_prompt=False)
        return payload

    def _map(self, function: Any, chats: list[Chat]) -> list[Any]:
        if len(chats) == 1:
            return [function(chats[0])]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chats))) as pool:
            return list(pool.map(function, chats))

    def generate(self, chats: list[Chat], params: GenerationParams) -> list[Generation]:
        def one(chat: Chat) -> Generation:
            body = self._post(
                "/chat/completions",
                self._chat_payload(
                    chat,
                    max_tokens=params.max_new_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    seed=params.seed,
                ),
            )
            try:
                choice = body["choices"][0]
                text = storable_text(choice["message"]["content"] or "")
                usage = body.get("usage") or {}
                return Generation(
                    text=text,
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                    extra={"finish_reason": choice.get("finish_reason") or ""},
                )
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise BackendError(
                    f"server {self.server!r} sent a chat completion without choices[0].message.content: "
                    f"{json.dumps(body)[:300]}"
                ) from exc

        return self._map(one, chats) if chats else []

    def choice_logprobs(self, chats: list[Chat], choices: list[str]) -> list[dict[str, float]]:
        """Log-probabilities of the first token of each choice, from top_logprobs of one token.

        A choice matches a listed token when the token (without surrounding spaces) equals the
        choice or starts it; variants (" YES", "YES") are added up. Choices the server does not
        list get a floor just below the least likely listed token. Only the first token is
        seen, so choices should differ in their first word (YES/NO, makes/maybe/doesnt, 1..5).
        """
        if not choices or any(not choice.strip() for choice in choices):
            raise BackendError(f"choices must be non-empty strings, got {choices!r}")

        def one(chat: Chat) -> dict[str, float]:
            body = self._post(
                "/chat/completions",
                self._chat_payload(chat, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=self.top_k),
            )
            try:
                listed = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                tokens = [(str(item["token"]), float(item["logprob"])) for item in listed]
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise BackendError(
                    f"server {self.server!r} sent no choices[0].logprobs.content[0].top_logprobs; does it support "
                    f"logprobs? {json.dumps(body)[:300]}"
                ) from exc
            if not tokens:
                raise BackendError(f"server {self.server!r} sent an empty top_logprobs list")
            return score_choices(tokens, choices)

        return self._map(one, chats) if chats else []


def score_choices(tokens: list[tuple[str, float]], choices: list[str]) -> dict[str, float]:
    floor = min(logprob for _, logprob in tokens) - UNLISTED_CHOICE_MARGIN
    scores: dict[str, float] = {}
    for choice in choices:
        wanted = choice.strip()
        matches = [lp for token, lp in tokens if token.strip() and wanted.startswith(token.strip())]
        exact = [lp for token, lp in tokens if token.strip() == wanted]
        # Prefer whole-choice tokens; fall back to prefixes for choices the tokenizer splits.
        picked = exact or matches
        scores[choice] = _logsumexp(picked) if picked else floor
    return scores


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))
