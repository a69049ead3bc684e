"""Defensive parsing of what small models write.

A 135M model wraps JSON in code fences, adds chatter before and after it, forgets quotes and
answers in words. These functions accept the common shapes and raise `ParseError` with a
message precise enough to go into a repair prompt (and into the failed item's error field).
They never guess: an answer that is not there is an error, not a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_CONFIDENCE_WORDS = {"very high": 0.95, "high": 0.9, "medium": 0.6, "moderate": 0.6, "low": 0.3, "very low": 0.1}


class ParseError(ValueError):
    """The model output does not have the expected shape; the message says where and why."""


@dataclass(frozen=True)
class ExtractedAttribute:
    attribute: str
    reason: str
    confidence: float | None
    evidence_turns: list[int] = field(default_factory=list)


def strip_code_fences(text: str) -> str:
    """The body of the first fenced block if there is one, else the text itself."""
    match = _FENCE.search(text)
    if match:
        return match.group(1).strip()
    # An opening fence the model never closed (it ran out of tokens).
    stripped = text.strip()
    if stripped.startswith("```"):
        return stripped.split("\n", 1)[1] if "\n" in stripped else ""
    return stripped


def _balanced_json_spans(text: str, opener: str) -> list[str]:
    """Substrings that start at `opener` and end at its matching closer, string-aware."""
    closer = "]" if opener == "[" else "}"
    spans: list[str] = []
    start = text.find(opener)
    while start != -1:
        depth = 0
        in_string = False
        escaped = False
        for pos in range(start, len(text)):
            char = text[pos]
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    if char == closer:
                        spans.append(text[start : pos + 1])
                    break
        start = text.find(opener, start + 1)
        if len(spans) >= 20:
            break
    return spans


def extract_json(text: str, *, accept: Callable[[object], bool] | None = None) -> object:
    """The first JSON list (or else object) in the text, ignoring fences and surrounding chatter.

    With `accept`, candidates it rejects are skipped ("see note [1]" before the real list).
    """
    body = strip_code_fences(text)
    if not body.strip():
        raise ParseError("the output is empty: expected a JSON list")
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    last_error = "no JSON list or object found in the output"
    fallback: list[object] = []
    for opener in ("[", "{"):
        for span in _balanced_json_spans(body, opener):
            try:
                value = json.loads(span)
            except json.JSONDecodeError as exc:
                last_error = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                continue
            if accept is None or accept(value):
                return value
            fallback.append(value)
    if fallback:
        return fallback[0]
    if "[" in body and "]" not in body[body.find("[") :]:
        last_error = "the JSON list is not closed (output cut off?)"
    raise ParseError(last_error)


def _looks_like_attributes(value: object) -> bool:
    if isinstance(value, dict):
        return "attribute" in value or "attributes" in value
    return isinstance(value, list) and all(isinstance(entry, dict | str) for entry in value)


def _confidence(value: object, where: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(f"{where}.confidence: expected a number between 0 and 1, got {value!r}")
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _CONFIDENCE_WORDS:
            return _CONFIDENCE_WORDS[word]
        try:
            value = float(word)
        except ValueError:
            raise ParseError(f"{where}.confidence: expected a number between 0 and 1, got {value!r}") from None
    if not isinstance(value, int | float):
        raise ParseError(f"{where}.confidence: expected a number between 0 and 1, got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ParseError(f"{where}.confidence: {number} is outside 0..1")
    return number


def _evidence(value: object, where: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list):
        raise ParseError(f"{where}.evidence_turns: expected a list of turn numbers, got {value!r}")
    turns: list[int] = []
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, int | str):
            raise ParseError(f"{where}.evidence_turns: {entry!r} is not a turn number")
        try:
            turns.append(int(entry))
        except ValueError:
            raise ParseError(f"{where}.evidence_turns: {entry!r} is not a turn number") from None
    return turns


def parse_attribute_list(text: str) -> list[ExtractedAttribute]:
    """A JSON list of {"attribute", "reason", "confidence", "evidence_turns"} objects.

    An empty list is a valid answer (nothing to infer). A single object is accepted as a list of one.
    """
    data = extract_json(text, accept=_looks_like_attributes)
    if isinstance(data, dict):
        # {"attributes": [...]} or one bare attribute object.
        data = data.get("attributes", [data]) if "attribute" not in data else [data]
    if not isinstance(data, list):
        raise ParseError(f"expected a JSON list of attributes, got {type(data).__name__}")
    found: list[ExtractedAttribute] = []
    for index, entry in enumerate(data):
        where = f"item {index}"
        if isinstance(entry, str):
            entry = {"attribute": entry}
        if not isinstance(entry, dict):
            raise ParseError(f"{where}: expected an object, got {type(entry).__name__}")
        text_value = entry.get("attribute")
        if not isinstance(text_value, str) or not text_value.strip():
            raise ParseError(f"{where}.attribute: missing or empty")
        reason = entry.get("reason", "")
        if not isinstance(reason, str):
            raise ParseError(f"{where}.reason: expected text, got {type(reason).__name__}")
        found.append(
            ExtractedAttribute(
                attribute=" ".join(text_value.split()),
                reason=reason.strip(),
                confidence=_confidence(entry.get("confidence"), where),
                evidence_turns=_evidence(entry.get("evidence_turns", entry.get("evidence")), where),
            )
        )
    return found


_ANSWER_LINE = re.compile(r"(?:answer|label|rating)\s*[:=-]\s*\**\s*([A-Za-z_' ]+|[1-5])", re.IGNORECASE)


def _normalise(word: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", word.lower().replace("'", "")).strip("_")


def parse_choice(text: str, choices: dict[str, str]) -> str:
    """The answer a free-text output gives, as one of `choices` values.

    `choices` maps accepted spellings (normalised: lower case, non-alphanumerics as "_") to the
    stored answer, e.g. {"yes": "yes", "no": "no"}. An explicit `Answer: X` line wins; otherwise
    the output must consist of exactly one known answer (possibly in a JSON {"answer": ...}).
    """
    body = strip_code_fences(text).strip()
    if not body:
        raise ParseError("the output is empty: expected an answer")
    spellings = sorted(choices, key=len, reverse=True)
    # (candidate, whether words may follow the answer: "Answer: YES, because ..." is an answer line,
    # but a bare first line must be the answer alone, or "no idea" would read as "no").
    candidates: list[tuple[str, bool]] = []
    match = _ANSWER_LINE.search(body)
    if match:
        candidates.append((match.group(1), True))
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("answer"), str | int):
        candidates.append((str(data["answer"]), False))
    elif isinstance(data, int) and not isinstance(data, bool):
        candidates.append((str(data), False))
    candidates.append((body.splitlines()[0], False))
    for candidate, prefix_ok in candidates:
        normalised = _normalise(candidate)
        for spelling in spellings:
            if normalised == spelling or (prefix_ok and normalised.startswith(spelling + "_")):
                return choices[spelling]
    known = ", ".join(sorted(set(choices.values())))
    raise ParseError(f"no answer line: expected 'Answer: <one of {known}>'")


CORRECTNESS_CHOICES = {
    "makes_sense": "makes_sense",
    "make_sense": "makes_sense",
    "yes": "makes_sense",
    "maybe": "maybe",
    "doesnt_make_sense": "doesnt_make_sense",
    "does_not_make_sense": "doesnt_make_sense",
    "no": "doesnt_make_sense",
}
RATING_CHOICES = {str(n): str(n) for n in range(1, 6)}
YES_NO_CHOICES = {"yes": "yes", "no": "no"}


def parse_rating(text: str) -> str:
    """A 1-5 rating: "Answer: 4", "4", or {"answer": 4}."""
    return parse_choice(text, RATING_CHOICES)
