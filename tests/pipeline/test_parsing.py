"""Defensive parsing of malformed model output: fences, chatter, bad JSON, no answer, bad confidences."""

from __future__ import annotations

import pytest

from personalization.pipeline.parsing import (
    CORRECTNESS_CHOICES,
    YES_NO_CHOICES,
    ParseError,
    parse_attribute_list,
    parse_choice,
    parse_rating,
    strip_code_fences,
)

ONE = '[{"attribute": "The user is a nurse", "reason": "night shifts", "confidence": 0.8, "evidence_turns": [0, 2]}]'


@pytest.mark.parametrize(
    "text",
    [
        ONE,
        f"```json\n{ONE}\n```",
        f"```\n{ONE}\n```\nLet me know if you need more!",
        f"Sure! Here are the attributes:\n{ONE}\nThese are based on the chat.",
        f"Note [1]: as requested.\n{ONE}",
        f"```json\n{ONE}",  # fence never closed
    ],
)
def test_attribute_list_is_found_despite_fences_and_chatter(text: str) -> None:
    [found] = parse_attribute_list(text)
    assert (found.attribute, found.reason, found.confidence, found.evidence_turns) == (
        "The user is a nurse",
        "night shifts",
        0.8,
        [0, 2],
    )


def test_strip_code_fences_keeps_plain_text() -> None:
    assert strip_code_fences("  [1, 2] ") == "[1, 2]"
    assert strip_code_fences("```python\nx\n```") == "x"


def test_empty_list_means_nothing_found() -> None:
    assert parse_attribute_list("[]") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the output is empty"),
        ("I can't help with that.", "no JSON list or object found"),
        ('[{"attribute": "The user is', "not closed"),
        ("[{'attribute': 'single quotes'}]", "invalid JSON"),
        ('[{"reason": "no attribute"}]', "item 0.attribute: missing or empty"),
        ('[{"attribute": "   "}]', "item 0.attribute: missing or empty"),
        ('[{"attribute": "ok"}, 5]', "item 1: expected an object"),
        ('[{"attribute": "x", "confidence": 1.5}]', "item 0.confidence: 1.5 is outside 0..1"),
        ('[{"attribute": "x", "confidence": -0.1}]', "item 0.confidence: -0.1 is outside 0..1"),
        ('[{"attribute": "x", "confidence": "sure"}]', "item 0.confidence: expected a number"),
        ('[{"attribute": "x", "confidence": true}]', "item 0.confidence: expected a number"),
        ('[{"attribute": "x", "evidence_turns": ["first"]}]', "item 0.evidence_turns: 'first' is not a turn number"),
        ('[{"attribute": "x", "reason": 3}]', "item 0.reason: expected text"),
        ('"just a string"', "expected a JSON list of attributes, got str"),
    ],
)
def test_malformed_attribute_lists_raise_a_precise_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_attribute_list(text)


def test_confidence_words_and_numeric_strings_are_read() -> None:
    found = parse_attribute_list('[{"attribute": "a", "confidence": "high"}, {"attribute": "b", "confidence": "0.4"}]')
    assert [f.confidence for f in found] == [0.9, 0.4]


def test_single_object_and_wrapped_list_are_accepted() -> None:
    assert parse_attribute_list('{"attribute": "The user cooks"}')[0].attribute == "The user cooks"
    assert parse_attribute_list('{"attributes": [{"attribute": "a"}]}')[0].attribute == "a"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Answer: YES", "yes"),
        ("answer: no, because tides are physics", "no"),
        ("**Answer:** Yes", "yes"),
        ("YES", "yes"),
        ('{"answer": "no"}', "no"),
    ],
)
def test_yes_no_answers(text: str, answer: str) -> None:
    assert parse_choice(text, YES_NO_CHOICES) == answer


@pytest.mark.parametrize("text", ["", "It depends on the user.", "no idea", "Maybe?"])
def test_no_answer_line_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_choice(text, YES_NO_CHOICES)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Label: makes_sense", "makes_sense"),
        ("doesn't make sense", "doesnt_make_sense"),
        ("does not make sense", "doesnt_make_sense"),
        ("maybe", "maybe"),
        ('{"answer": "maybe"}', "maybe"),
    ],
)
def test_correctness_labels(text: str, answer: str) -> None:
    assert parse_choice(text, CORRECTNESS_CHOICES) == answer


@pytest.mark.parametrize(
    ("text", "answer"), [("4", "4"), ("Rating: 2", "2"), ('{"answer": 5}', "5"), ("Answer: 1", "1")]
)
def test_ratings(text: str, answer: str) -> None:
    assert parse_rating(text) == answer


@pytest.mark.parametrize("text", ["7", "B is better", "Answer: 0", ""])
def test_bad_ratings_are_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_rating(text)
