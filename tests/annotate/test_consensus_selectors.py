"""judgments.selectors: attributes_accepted_by_humans and relevant_attributes_by_humans."""

from __future__ import annotations

import pytest

from judgments.models import Judgment
from judgments.selectors import attributes_accepted_by_humans, relevant_attributes_by_humans
from personalization.models import ModelRun
from tests.annotate.conftest import make_subject
from tests.factories import ModelRunFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_stage1_strict_majority_of_humans_accepts(study) -> None:
    owner_user = UserFactory(username="the-subject")
    subject = make_subject(study, attributes=3, user=owner_user)
    yes, tie, no = subject.attributes.order_by("id")
    humans = [UserFactory(username=f"h{i}") for i in range(3)]
    for attribute, answers in ((yes, ["makes_sense", "makes_sense", "maybe"]), (no, ["maybe", "maybe", "makes_sense"])):
        for user, answer in zip(humans, answers, strict=True):
            Judgment.objects.create(
                study=study, stage=1, annotator=user, subject=subject, attribute=attribute, answer=answer
            )
    for user, answer in zip(humans[:2], ["makes_sense", "doesnt_make_sense"], strict=True):
        Judgment.objects.create(study=study, stage=1, annotator=user, subject=subject, attribute=tie, answer=answer)
    # Neither a model nor the subject's own first-person judgment tips the balance.
    run = ModelRunFactory(study=study, step=ModelRun.Step.JUDGE_CORRECTNESS)
    Judgment.objects.create(study=study, stage=1, model_run=run, subject=subject, attribute=tie, answer="makes_sense")
    Judgment.objects.create(
        study=study, stage=1, annotator=owner_user, subject=subject, attribute=tie, answer="makes_sense"
    )
    assert attributes_accepted_by_humans(study=study) == {yes.pk}


def test_stage2_relevance_is_per_prompt(study) -> None:
    subject = make_subject(study, attributes=1)
    (attribute,) = subject.attributes.all()
    p1, p2 = PromptFactory(study=study), PromptFactory(study=study)
    humans = [UserFactory(username=f"r{i}") for i in range(3)]
    for prompt, answers in ((p1, ["yes", "yes", "no"]), (p2, ["no", "no", "yes"])):
        for user, answer in zip(humans, answers, strict=True):
            Judgment.objects.create(
                study=study, stage=2, annotator=user, prompt=prompt, attribute=attribute, answer=answer
            )
    assert relevant_attributes_by_humans(study=study) == {p1.pk: {attribute.pk}}
