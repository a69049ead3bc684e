"""A small but complete study for the screen tests: conversations with a long turn, merged
attributes with evidence, prompts paired with subjects, generic and personalized responses,
and the items of all three stages built by the engine's own design services."""

from __future__ import annotations

from django.contrib.auth.models import User

from annotate.services import items_build
from personalization.models import Attribute, Response, Study, SubjectPrompt
from tests.factories import (
    AttributeFactory,
    ConversationFactory,
    PromptFactory,
    ResponseFactory,
    SubjectFactory,
    TurnFactory,
)

LONG_TURN = "I have been cooking vegetarian food for years. " * 30
# Untrusted text: must reach the page as text, never as markup.
HOSTILE_TEXT = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


def populate_study(study: Study, *, subjects: int = 2, prompts: int = 2) -> dict[int, int]:
    """Fills the study and builds its items; returns {stage: items created}."""
    subject_rows = []
    for s in range(subjects):
        subject = SubjectFactory(study=study, external_id=f"hashed-ip-{s}")
        turns = []
        for c in range(2):
            conversation = ConversationFactory(subject=subject, conversation_hash=f"s{s}-c{c}", model="gpt-4")
            turns += [
                TurnFactory(
                    conversation=conversation, index=0, role="user", content=f"Hi, I am person {s}. {HOSTILE_TEXT}"
                ),
                TurnFactory(conversation=conversation, index=1, role="assistant", content="Hello! How can I help?"),
                TurnFactory(
                    conversation=conversation, index=2, role="user", content=LONG_TURN if c == 0 else "Thanks."
                ),
            ]
        attributes = []
        for a in range(3):
            attribute = AttributeFactory(
                subject=subject,
                level=Attribute.Level.MERGED,
                text=f"Person {s} attribute {a}" + (f" {HOSTILE_TEXT}" if a == 0 else ""),
                reason=f"Said so in conversation {a % 2 + 1}",
                confidence=0.5 + a / 10,
            )
            attribute.evidence_turns.set([turns[0], turns[2]] if a == 0 else [turns[3 + a]])
            attributes.append(attribute)
        subject_rows.append((subject, attributes))
    prompt_rows = [
        PromptFactory(study=study, text=f"Plan a dinner party, variant {p}. {HOSTILE_TEXT}") for p in range(prompts)
    ]
    for subject, attributes in subject_rows:
        for prompt in prompt_rows:
            pair = SubjectPrompt.objects.create(subject=subject, prompt=prompt)
            ResponseFactory(pair=pair, mode=Response.Mode.GENERIC, text=f"Generic answer to prompt {prompt.pk}.")
            personalized = ResponseFactory(
                pair=pair,
                mode=Response.Mode.ALL_ATTRIBUTES,
                text=f"Personalized answer for subject {subject.pk}: vegetarian menu. {HOSTILE_TEXT}",
            )
            personalized.conditioned_on.set(attributes[:2])
    return {stage: items_build(study=study, stage=stage) for stage in (1, 2, 3)}


def add_annotators(study: Study, count: int) -> list[User]:
    users = [User.objects.create_user(f"annotator-{i}", password="pw-annotator-123") for i in range(count)]
    study.annotators.add(*users)
    return users
