"""Fixtures for the annotation engine: a study with data for all three stages and its items."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from annotate.models import Item
from annotate.services import items_build
from personalization.models import Attribute, Response, Stage, Study, StudyStage, Subject, SubjectPrompt
from personalization.selectors import stage_config_forget
from tests.factories import (
    AttributeFactory,
    ConversationFactory,
    PromptFactory,
    ResponseFactory,
    SubjectFactory,
    TurnFactory,
    UserFactory,
)


def make_subject(study: Study, *, attributes: int = 2, user: User | None = None) -> Subject:
    subject = SubjectFactory(study=study, user=user)
    conversation = ConversationFactory(subject=subject)
    turns = [
        TurnFactory(conversation=conversation, index=0, role="user", content="I cook <b>vegetarian</b> food"),
        TurnFactory(conversation=conversation, index=1, role="assistant", content="Here is a recipe."),
    ]
    for _ in range(attributes):
        attribute = AttributeFactory(subject=subject)
        attribute.evidence_turns.add(turns[0])
    return subject


def make_pair_with_responses(subject: Subject, *, conditioned: list[Attribute] | None = None) -> SubjectPrompt:
    prompt = PromptFactory(study=subject.study)
    pair = SubjectPrompt.objects.create(subject=subject, prompt=prompt)
    ResponseFactory(pair=pair, mode=Response.Mode.GENERIC, text="Generic answer.")
    personalized = ResponseFactory(pair=pair, mode=Response.Mode.ALL_ATTRIBUTES, text="Personalized answer.")
    personalized.conditioned_on.set(conditioned if conditioned is not None else subject.attributes.all())
    return pair


@pytest.fixture
def annotators(study: Study) -> list[User]:
    """Five more members of the study."""
    users = [UserFactory(username=f"member{i}") for i in range(5)]
    study.annotators.add(*users)
    return users


@pytest.fixture
def stage1_items(study: Study) -> Callable[..., list[Item]]:
    def build(count: int = 2, *, k: int = 3, lease_seconds: int = 900) -> list[Item]:
        StudyStage.objects.filter(study=study, stage=Stage.CORRECTNESS).update(
            judgments_per_item=k, lease_seconds=lease_seconds
        )
        stage_config_forget(study_id=study.pk)  # a queryset update sends no signal
        for _ in range(count):
            make_subject(study)
        items_build(study=study, stage=1)
        return list(Item.objects.filter(study=study, stage=1).order_by("id"))

    return build


@pytest.fixture
def stage2_items(study: Study) -> list[Item]:
    subjects = [make_subject(study) for _ in range(2)]
    prompt = PromptFactory(study=study)
    for subject in subjects:
        SubjectPrompt.objects.create(subject=subject, prompt=prompt)
    items_build(study=study, stage=2)
    return list(Item.objects.filter(study=study, stage=2))


@pytest.fixture
def stage3_item(study: Study) -> Item:
    subject = make_subject(study)
    make_pair_with_responses(subject)
    items_build(study=study, stage=3)
    return Item.objects.get(study=study, stage=3)


@pytest.fixture
def other_study_item(db: None) -> Item:
    """A stage-1 item of a study the test users have nothing to do with."""
    other = Study.objects.create(name="Another study", status=Study.Status.OPEN)
    make_subject(other)
    items_build(study=other, stage=1)
    return Item.objects.get(study=other, stage=1)
