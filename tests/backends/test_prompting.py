"""Prompt templates: the restricted formatter, the shipped files and their hashes."""

from __future__ import annotations

import hashlib

import pytest

from personalization.prompting import (
    TEMPLATE_DIR,
    TemplateError,
    available_templates,
    load_template,
    template_from_text,
)

SIMPLE = "# a comment\n--- system ---\nYou help {who}.\n--- user ---\nSay {{literally}} {what}.\n"

# Changing a shipped template means adding a new version file: outputs store these hashes.
SHIPPED = {
    "extract_attributes.v1": ["conversation"],
    "extract_attributes.v2": ["conversation"],
    "relevance.v1": ["attribute", "prompt"],
    "generate_generic.v1": ["prompt"],
    "generate_personalized.v1": ["attributes", "prompt"],
    "judge_correctness.v1": ["attribute", "conversation"],
    "judge_preference.v1": ["attribute", "prompt", "response_a", "response_b"],
    "repair_json.v1": ["error", "expected", "raw_output"],
}


def test_render_gives_a_system_and_a_user_message() -> None:
    template = template_from_text("simple.v1", SIMPLE)
    assert template.render(who="researchers", what="hello") == [
        {"role": "system", "content": "You help researchers."},
        {"role": "user", "content": "Say {literally} hello."},
    ]
    assert template.fields == {"who", "what"}


def test_worked_examples_become_earlier_turns() -> None:
    text = "--- system ---\ns\n--- user ---\nexample {{q}}\n--- assistant ---\n[]\n--- user ---\n{q}\n"
    assert template_from_text("fewshot.v1", text).render(q="real") == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "example {q}"},
        {"role": "assistant", "content": "[]"},
        {"role": "user", "content": "real"},
    ]


def test_values_are_inserted_verbatim_without_recursion() -> None:
    template = template_from_text("simple.v1", SIMPLE)
    hostile = "{who} {0} {what.__class__} {{x}} }"
    chat = template.render(who=hostile, what="{what}")
    assert chat[0]["content"] == f"You help {hostile}."
    assert chat[1]["content"] == "Say {literally} {what}."


@pytest.mark.parametrize(
    "field",
    ["{a.b}", "{a[0]}", "{a!r}", "{a:>10}", "{}", "{0}", "{a.__class__}", "{a!s:10}"],
)
def test_only_plain_fields_are_allowed(field: str) -> None:
    text = f"--- system ---\nsys\n--- user ---\nline one\nvalue {field}\n"
    with pytest.raises(TemplateError, match=r"bad\.v1\.txt line 5: field .* is not allowed"):
        template_from_text("bad.v1", text)


def test_unbalanced_braces_name_the_line() -> None:
    with pytest.raises(TemplateError, match=r"bad\.v1\.txt line 4: Single '}'"):
        template_from_text("bad.v1", "--- system ---\nsys\n--- user ---\noops }\n")


def test_missing_values_are_an_error() -> None:
    with pytest.raises(TemplateError, match="missing value.*what"):
        template_from_text("simple.v1", SIMPLE).render(who="x")


def test_extra_values_are_an_error() -> None:
    with pytest.raises(TemplateError, match="unexpected value.*where"):
        template_from_text("simple.v1", SIMPLE).render(who="x", what="y", where="z")


def test_values_must_be_text() -> None:
    with pytest.raises(TemplateError, match="value for 'what' must be str, got int"):
        template_from_text("simple.v1", SIMPLE).render(who="x", what=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--- user ---\nu\n--- system ---\ns\n", r"line 1: '--- user ---' cannot come first"),
        ("--- system ---\ns\n", "must end with a '--- user ---' section"),
        ("--- system ---\ns\n--- user ---\nu\n--- assistant ---\na\n", "must end with a '--- user ---' section"),
        ("stray\n--- system ---\ns\n--- user ---\nu\n", r"line 1: text before"),
        ("--- system ---\ns\n--- user ---\nu\n--- user ---\nv\n", r"line 5: '--- user ---' cannot come after"),
    ],
)
def test_malformed_files_are_rejected_with_the_place(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        template_from_text("bad.v1", text)


@pytest.mark.parametrize("name", ["../settings", "extract_attributes", "Extract.v1", "a/b.v1", "nope.v9"])
def test_template_names_are_checked(name: str) -> None:
    with pytest.raises(TemplateError):
        load_template(name)


def test_every_shipped_template_loads_and_renders_with_its_fields() -> None:
    assert set(available_templates()) == set(SHIPPED)
    for name, fields in SHIPPED.items():
        template = load_template(name)
        assert sorted(template.fields) == fields
        chat = template.render(**{field: f"<{field}>" for field in fields})
        roles = [message["role"] for message in chat]
        assert roles[0] == "system" and roles[-1] == "user"
        assert roles[1:] == ["user", "assistant"] * ((len(roles) - 2) // 2) + ["user"]
        assert all(f"<{field}>" in chat[-1]["content"] for field in fields)
        # Maintainer comments at the top of the file are not sent to the model.
        assert not chat[0]["content"].startswith("#")


def test_hashes_are_the_sha256_of_the_file_and_stable() -> None:
    for name in SHIPPED:
        raw = (TEMPLATE_DIR / f"{name}.txt").read_bytes()
        template = load_template(name)
        assert template.sha256 == hashlib.sha256(raw).hexdigest()
        assert template_from_text(name, template.text).sha256 == template.sha256


def test_relevance_prompt_ends_by_asking_for_the_answer_line() -> None:
    user = load_template("relevance.v1").render(attribute="a", prompt="p")[-1]["content"]
    assert user.endswith("Answer: YES or Answer: NO.")
