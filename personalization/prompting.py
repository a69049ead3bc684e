"""Prompt templates: versioned text files rendered with a deliberately small formatter.

A template file (prompt_templates/<name>.v<N>.txt) has parts, each introduced by a marker line:
`--- system ---`, then `--- user ---`. Worked examples may sit between them as earlier turns
(`--- user ---` / `--- assistant ---` pairs before the final `--- user ---`): small models copy
an example given as a previous exchange far more reliably than one described in the prompt.
Lines before the first marker starting with `#` are comments for maintainers and are not sent
to the model (they are part of the hash).

Fields are plain `{name}` placeholders. No attribute access, indexing, format specs or
conversions: a template is data, and values (conversation text, model output) are inserted
verbatim and never re-interpreted. Literal braces are written `{{` and `}}`.

Changing a prompt means adding a new version file, never editing one in place: every model
output stores the template's sha256, so old results stay traceable to the exact text.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from personalization.backends.base import Chat

TEMPLATE_DIR = Path(__file__).resolve().parent / "prompt_templates"
TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]*\.v[0-9]+")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECTION_MARKERS = {"--- system ---": "system", "--- user ---": "user", "--- assistant ---": "assistant"}


class TemplateError(ValueError):
    """A template file or a render call is malformed; the message names the file, line or field."""


# A compiled section: literal text and field names, alternating as (literal, field_or_None).
Segments = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str
    sha256: str

    def render(self, **values: str) -> Chat:
        """The chat (system, any example turns, user) with every field replaced by its value, verbatim."""
        sections = _compile(self.name, self.text)
        needed = _fields(sections)
        missing = sorted(needed - set(values))
        extra = sorted(set(values) - needed)
        if missing:
            raise TemplateError(f"template {self.name}: missing value(s) for {', '.join(missing)}")
        if extra:
            raise TemplateError(
                f"template {self.name}: unexpected value(s) {', '.join(extra)}; fields: {sorted(needed)}"
            )
        for key, value in values.items():
            if not isinstance(value, str):
                raise TemplateError(f"template {self.name}: value for {key!r} must be str, got {type(value).__name__}")
        chat: Chat = []
        for role, segments in sections:
            parts: list[str] = []
            for literal, field in segments:
                parts.append(literal)
                if field is not None:
                    parts.append(values[field])
            chat.append({"role": role, "content": "".join(parts).strip()})
        return chat

    @property
    def fields(self) -> frozenset[str]:
        return _fields(_compile(self.name, self.text))


def _fields(sections: tuple[tuple[str, Segments], ...]) -> frozenset[str]:
    return frozenset(field for _, segments in sections for _, field in segments if field is not None)


@lru_cache(maxsize=64)
def _compile(name: str, text: str) -> tuple[tuple[str, Segments], ...]:
    """Split a template into (role, segments) sections, validating every field."""
    formatter = string.Formatter()
    sections: list[tuple[str, list[tuple[str, str | None]]]] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped in SECTION_MARKERS:
            role = SECTION_MARKERS[stripped]
            previous = sections[-1][0] if sections else None
            allowed = {None: "system", "system": "user", "user": "assistant", "assistant": "user"}[previous]
            if role != allowed:
                after = f"after '--- {previous} ---'" if previous else "first"
                raise TemplateError(
                    f"{name}.txt line {number}: '{stripped}' cannot come {after}; expected '--- {allowed} ---'"
                )
            sections.append((role, []))
            continue
        if not sections:
            if stripped and not stripped.startswith("#"):
                raise TemplateError(f"{name}.txt line {number}: text before the '--- system ---' line")
            continue
        try:
            parsed = list(formatter.parse(line))
        except ValueError as exc:
            raise TemplateError(f"{name}.txt line {number}: {exc} (write literal braces as {{{{ and }}}})") from exc
        for literal, field, spec, conversion in parsed:
            if field is None:
                sections[-1][1].append((literal, None))
                continue
            if not FIELD_NAME.fullmatch(field) or spec or conversion:
                shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise TemplateError(
                    f"{name}.txt line {number}: field {shown} is not allowed; only plain {{name}} fields "
                    "(no attribute access, indexing, conversions or format specs)"
                )
            sections[-1][1].append((literal, field))
    if len(sections) < 2 or sections[-1][0] != "user":
        raise TemplateError(f"{name}.txt: needs a '--- system ---' section and must end with a '--- user ---' section")
    return tuple((role, tuple(segments)) for role, segments in sections)


def template_from_text(name: str, text: str) -> PromptTemplate:
    """Validate and wrap template text (used by load_template, and by tests with inline text)."""
    _compile(name, text)
    return PromptTemplate(name=name, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


@lru_cache(maxsize=64)
def load_template(name: str) -> PromptTemplate:
    """Load prompt_templates/<name>.txt, e.g. load_template("extract_attributes.v1")."""
    if not TEMPLATE_NAME.fullmatch(name):
        raise TemplateError(f"template name {name!r} must look like 'extract_attributes.v1'")
    path = TEMPLATE_DIR / f"{name}.txt"
    if not path.is_file():
        raise TemplateError(f"no prompt template {name!r}; available: {', '.join(available_templates())}")
    return template_from_text(name, path.read_text(encoding="utf-8"))


def available_templates() -> list[str]:
    return sorted(path.stem for path in TEMPLATE_DIR.glob("*.txt") if TEMPLATE_NAME.fullmatch(path.stem))
