"""annotate.design.items_build: items per stage, their attributes, gating and idempotency."""

from __future__ import annotations

import pytest

from annotate.models import Item
from annotate.services import items_build
from judgments.models import Judgment
from personalization.models import Attribute, Response, StudyStage, SubjectPrompt
from tests.annotate.conftest import make_pair_with_responses, make_subject
from tests.factories import AttributeFactory, PromptFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db


def _judge(study, stage: int, attribute: Attribute, answers: list[str], **target) -> None:
    for i, answer in enumerate(answers):
        user = UserFactory(username=f"judge-{stage}-{attribute.pk}-{i}")
        Judgment.objects.create(study=study, stage=stage, annotator=user, attribute=attribute, answer=answer, **target)


def test_stage1_one_item_per_subject_with_merged_attributes_only(study) -> None:
    subject = make_subject(study, attributes=3)
    AttributeFactory(subject=subject, level=Attribute.Level.ORIGINAL)
    make_subject(study, attributes=0)
    assert items_build(study=study, stage=1) == 1
    item = Item.objects.get(study=study, stage=1)
    assert item.subject_id == subject.pk and item.k == 3
    assert set(item.attributes.values_list("level", flat=True)) == {"merged"}
    assert item.attributes.count() == 3


def test_build_is_idempotent_and_adds_only_what_is_new(study) -> None:
    make_subject(study)
    assert items_build(study=study, stage=1) == 1
    assert items_build(study=study, stage=1) == 0
    make_subject(study)
    assert items_build(study=study, stage=1) == 1
    assert Item.objects.filter(study=study, stage=1).count() == 2


def test_k_comes_from_the_stage_settings(study) -> None:
    StudyStage.objects.filter(study=study, stage=1).update(judgments_per_item=5)
    make_subject(study)
    items_build(study=study, stage=1)
    assert Item.objects.get(study=study, stage=1).k == 5


def test_stage2_pools_the_attributes_of_every_paired_subject(study) -> None:
    a, b, unpaired = (make_subject(study) for _ in range(3))
    prompt = PromptFactory(study=study)
    SubjectPrompt.objects.create(subject=a, prompt=prompt)
    SubjectPrompt.objects.create(subject=b, prompt=prompt)
    assert items_build(study=study, stage=2) == 1
    item = Item.objects.get(study=study, stage=2)
    expected = set(a.attributes.values_list("id", flat=True)) | set(b.attributes.values_list("id", flat=True))
    assert set(item.attributes.values_list("id", flat=True)) == expected
    assert not item.attributes.filter(subject=unpaired).exists()


def test_stage2_gated_keeps_only_attributes_stage1_accepted(study) -> None:
    StudyStage.objects.filter(study=study, stage=2).update(gate_on_previous_stage=True)
    subject = make_subject(study, attributes=3)
    prompt = PromptFactory(study=study)
    SubjectPrompt.objects.create(subject=subject, prompt=prompt)
    accepted, rejected, tied = subject.attributes.order_by("id")
    _judge(study, 1, accepted, ["makes_sense", "makes_sense", "maybe"], subject=subject)
    _judge(study, 1, rejected, ["doesnt_make_sense", "makes_sense", "maybe"], subject=subject)
    _judge(study, 1, tied, ["makes_sense", "doesnt_make_sense"], subject=subject)
    items_build(study=study, stage=2)
    assert list(Item.objects.get(study=study, stage=2).attributes.values_list("id", flat=True)) == [accepted.pk]


def test_stage3_pairs_generic_with_preferred_personalized_response(study) -> None:
    subject = make_subject(study, attributes=2)
    pair = make_pair_with_responses(subject)
    selected = ResponseFactory(pair=pair, mode=Response.Mode.SELECTED_ATTRIBUTES, text="Selected.")
    selected.conditioned_on.set(subject.attributes.all()[:1])
    # A pair without a generic response makes no item.
    lonely = SubjectPrompt.objects.create(subject=subject, prompt=PromptFactory(study=study))
    ResponseFactory(pair=lonely, mode=Response.Mode.ALL_ATTRIBUTES)
    assert items_build(study=study, stage=3) == 1
    item = Item.objects.get(study=study, stage=3)
    assert item.personalized_response.mode == "all_attributes"
    assert item.generic_response.mode == "generic"
    assert item.attributes.count() == 2


def test_stage3_gated_keeps_only_attributes_stage2_judged_relevant(study) -> None:
    StudyStage.objects.filter(study=study, stage=3).update(gate_on_previous_stage=True)
    subject = make_subject(study, attributes=2)
    pair = make_pair_with_responses(subject)
    relevant, irrelevant = subject.attributes.order_by("id")
    _judge(study, 2, relevant, ["yes", "yes", "no"], prompt=pair.prompt)
    _judge(study, 2, irrelevant, ["no", "no", "yes"], prompt=pair.prompt)
    items_build(study=study, stage=3)
    assert list(Item.objects.get(study=study, stage=3).attributes.values_list("id", flat=True)) == [relevant.pk]


def test_items_with_nothing_to_judge_are_not_created(study) -> None:
    StudyStage.objects.filter(study=study, stage=3).update(gate_on_previous_stage=True)
    subject = make_subject(study)
    make_pair_with_responses(subject)
    assert items_build(study=study, stage=3) == 0
    assert not Item.objects.filter(study=study, stage=3).exists()
