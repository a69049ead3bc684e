"""Helpers shared by the step executors: prompt material, isolated batched generation,
bounded repair of malformed output, and choice scoring."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from personalization.backends.base import BackendError, Chat, ChatBackend, Generation, GenerationParams
from personalization.models import Conversation, ModelRun
from personalization.pipeline.parsing import ParseError
from personalization.prompting import PromptTemplate, load_template

DEFAULT_MAX_REPAIRS = 2
# A 135M model loses the thread in long prompts, and every model has a context limit: conversation
# text is cut to this many characters unless the run says otherwise.
DEFAULT_MAX_CHARS = 1500
DEFAULT_TURN_CHARS = 400
ATTEMPT_SEPARATOR = "\n----- repair attempt {n} -----\n"


def run_param_int(run: ModelRun, key: str, default: int) -> int:
    return int(run.params.get(key, default))


def conversation_lines(conversations: Iterable[Conversation], *, max_chars: int, user_only: bool = False) -> str:
    """Turns as "[<index>] <role>: <text>" lines (the templates' format), each turn and the whole cut short.

    user_only keeps just the user's turns, as "[<index>] <text>": what the user said is the
    evidence about them, and small models otherwise describe the assistant's answer.
    """
    lines: list[str] = []
    used = 0
    for conversation in conversations:
        for turn in conversation.turns.all():
            if user_only and turn.role != "user":
                continue
            content = " ".join(turn.content.split())
            if len(content) > DEFAULT_TURN_CHARS:
                content = content[: DEFAULT_TURN_CHARS - 3] + "..."
            line = f"[{turn.index}] {content}" if user_only else f"[{turn.index}] {turn.role}: {content}"
            if used + len(line) > max_chars:
                return "\n".join(lines)
            lines.append(line)
            used += len(line) + 1
    return "\n".join(lines)


def generation_params(run: ModelRun, spec_params: GenerationParams) -> GenerationParams:
    """The run's own generation values on top of the model's defaults, seeded with the run seed."""
    return GenerationParams(
        max_new_tokens=int(run.params.get("max_new_tokens", spec_params.max_new_tokens)),
        temperature=float(run.params.get("temperature", spec_params.temperature)),
        top_p=float(run.params.get("top_p", spec_params.top_p)),
        seed=int(run.seed),
    )


def generate_isolating(backend: ChatBackend, chats: list[Chat], params: GenerationParams) -> list[Generation | str]:
    """One Generation per chat, or an error string for a chat the backend refuses (e.g. too long).

    The whole batch goes in one call; only if the backend rejects it permanently are the chats
    retried one by one, so one bad input fails its own item instead of the whole run. When every
    chat fails alone too, the backend itself is broken (model missing): that error is raised and
    the run stops with it. Transient errors propagate (the task retries).
    """
    if not chats:
        return []
    try:
        return list(backend.generate(chats, params))
    except BackendError as exc:
        if exc.transient:
            raise
        batch_error = exc
    isolated: list[Generation | str] = []
    for chat in chats:
        try:
            isolated.extend(backend.generate([chat], params))
        except BackendError as exc:
            if exc.transient:
                raise
            isolated.append(f"backend refused this input: {exc}")
    if all(isinstance(outcome, str) for outcome in isolated):
        raise batch_error
    return isolated


@dataclass
class Attempted:
    """The outcome of generating (and maybe repairing) one chat."""

    value: Any = None
    error: str = ""
    raw: list[str] = field(default_factory=list)
    tokens: int = 0

    @property
    def raw_output(self) -> str:
        parts = [self.raw[0]] if self.raw else []
        for n, text in enumerate(self.raw[1:], start=1):
            parts.append(ATTEMPT_SEPARATOR.format(n=n) + text)
        return "".join(parts)

    @property
    def attempts(self) -> int:
        return max(1, len(self.raw))


def generate_parsed(
    *,
    backend: ChatBackend,
    chats: list[Chat],
    params: GenerationParams,
    parse: Callable[[str], Any],
    expected: str,
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    repair_template: PromptTemplate | None = None,
) -> list[Attempted]:
    """Generates for every chat in one batch and parses; outputs that do not parse are sent back
    with the repair prompt (batched again), at most `max_repairs` times. What still fails keeps
    every raw attempt and the last parser error: never dropped, never invented."""
    repair = repair_template or load_template("repair_json.v1")
    outcomes = [Attempted() for _ in chats]
    current = list(chats)
    pending = list(range(len(chats)))
    for round_number in range(max_repairs + 1):
        generations = generate_isolating(backend, [current[i] for i in pending], params)
        still_bad: list[int] = []
        for index, generation in zip(pending, generations, strict=True):
            outcome = outcomes[index]
            if isinstance(generation, str):
                outcome.error = generation
                continue
            outcome.raw.append(generation.text)
            outcome.tokens += generation.completion_tokens
            try:
                outcome.value = parse(generation.text)
                outcome.error = ""
            except ParseError as exc:
                outcome.error = f"malformed output after {round_number + 1} attempt(s): {exc}"
                still_bad.append(index)
                current[index] = repair.render(expected=expected, error=str(exc), raw_output=generation.text)
        pending = still_bad
        if not pending:
            break
    return outcomes


def choose_by_logprobs(
    backend: ChatBackend,
    chats: list[Chat],
    choices: dict[str, str],
    *,
    cue: str,
    baseline: dict[str, float] | None = None,
) -> list[tuple[str, dict[str, float]] | str]:
    """For each chat, the answer whose choice text is most likely right after `cue` (an assistant
    prefix such as "Answer:"), with every choice's log-probability: always a decision, or an error
    string for a chat the backend refuses (isolated as in generate_isolating).

    With a `baseline` (the scores of a content-free input), each choice is judged by how much more
    likely the input makes it than the model's prior: small models otherwise say YES to everything.
    """
    if not chats:
        return []
    cued = [[*chat, {"role": "assistant", "content": cue}] for chat in chats]
    try:
        scored: list[dict[str, float] | str] = list(backend.choice_logprobs(cued, list(choices)))
    except BackendError as exc:
        if exc.transient:
            raise
        batch_error = exc
        scored = []
        for chat in cued:
            try:
                scored.extend(backend.choice_logprobs([chat], list(choices)))
            except BackendError as single:
                if single.transient:
                    raise
                scored.append(f"backend refused this input: {single}")
        if all(isinstance(outcome, str) for outcome in scored):
            raise batch_error from None
    decided: list[tuple[str, dict[str, float]] | str] = []
    for scores in scored:
        if isinstance(scores, str):
            decided.append(scores)
            continue
        offset = baseline or {}
        best = max(choices, key=lambda choice: scores.get(choice, float("-inf")) - offset.get(choice, 0.0))
        decided.append((choices[best], {choice.strip(): scores.get(choice, float("-inf")) for choice in choices}))
    return decided
