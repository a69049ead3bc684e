"""The database itself refuses impossible rows: duplicate judgments, answers from the wrong stage,
a judgment with two raters or none, duplicate imports."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from judgments.models import ItemFeedback, Judgment
from personalization.models import Attribute, Prompt, Response, StudyStage, Subject, Turn
from tests.factories import (
    AttributeFactory,
    ConversationFactory,
    ModelRunFactory,
    PromptFactory,
    ResponseFactory,
    SubjectFactory,
    SubjectPromptFactory,
)

pytestmark = pytest.mark.django_db


def _raises_integrity(fn: object) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()  # type: ignore[operator]


def test_judgment_one_per_annotator_per_item_attribute(study, annotator) -> None:
    subject = SubjectFactory(study=study)
    attribute = AttributeFactory(subject=subject)
    kwargs = dict(study=study, stage=1, annotator=annotator, subject=subject, attribute=attribute)
    Judgment.objects.create(answer="maybe", **kwargs)
    _raises_integrity(lambda: Judgment.objects.create(answer="makes_sense", **kwargs))


def test_judgment_one_per_model_run_per_item_attribute(study) -> None:
    prompt = PromptFactory(study=study)
    attribute = AttributeFactory(subject=SubjectFactory(study=study))
    run = ModelRunFactory(study=study)
    kwargs = dict(study=study, stage=2, model_run=run, prompt=prompt, attribute=attribute)
    Judgment.objects.create(answer="yes", **kwargs)
    _raises_integrity(lambda: Judgment.objects.create(answer="no", **kwargs))


def test_different_annotators_may_judge_the_same_item(study, annotator, owner) -> None:
    subject = SubjectFactory(study=study)
    attribute = AttributeFactory(subject=subject)
    for user in (annotator, owner):
        Judgment.objects.create(
            study=study, stage=1, annotator=user, subject=subject, attribute=attribute, answer="maybe"
        )
    assert Judgment.objects.count() == 2


@pytest.mark.parametrize(("stage", "answer"), [(1, "yes"), (2, "maybe"), (3, "6"), (3, "yes"), (1, "")])
def test_judgment_answer_must_fit_its_stage(study, annotator, stage: int, answer: str) -> None:
    subject = SubjectFactory(study=study)
    attribute = AttributeFactory(subject=subject)
    item: dict[str, object] = {
        1: {"subject": subject},
        2: {"prompt": PromptFactory(study=study)},
        3: {"pair": SubjectPromptFactory(subject=subject), "personalized_side": "A"},
    }[stage]
    _raises_integrity(
        lambda: Judgment.objects.create(
            study=study, stage=stage, annotator=annotator, attribute=attribute, answer=answer, **item
        )
    )


def test_judgment_needs_exactly_one_rater(study, annotator) -> None:
    subject = SubjectFactory(study=study)
    attribute = AttributeFactory(subject=subject)
    run = ModelRunFactory(study=study)
    base = dict(study=study, stage=1, subject=subject, attribute=attribute, answer="maybe")
    _raises_integrity(lambda: Judgment.objects.create(**base))
    _raises_integrity(lambda: Judgment.objects.create(annotator=annotator, model_run=run, **base))


def test_judgment_item_must_match_stage(study, annotator) -> None:
    subject = SubjectFactory(study=study)
    attribute = AttributeFactory(subject=subject)
    # A stage 2 judgment is about a prompt, not a subject.
    _raises_integrity(
        lambda: Judgment.objects.create(
            study=study, stage=2, annotator=annotator, subject=subject, attribute=attribute, answer="yes"
        )
    )


def test_stage3_judgment_records_the_personalized_side(study, annotator) -> None:
    pair = SubjectPromptFactory(subject=SubjectFactory(study=study))
    attribute = AttributeFactory(subject=pair.subject)
    _raises_integrity(
        lambda: Judgment.objects.create(
            study=study, stage=3, annotator=annotator, pair=pair, attribute=attribute, answer="4"
        )
    )
    Judgment.objects.create(
        study=study, stage=3, annotator=annotator, pair=pair, attribute=attribute, answer="4", personalized_side="B"
    )


def test_item_feedback_one_per_annotator_per_item(study, annotator) -> None:
    subject = SubjectFactory(study=study)
    ItemFeedback.objects.create(study=study, stage=1, annotator=annotator, subject=subject, note="first")
    _raises_integrity(
        lambda: ItemFeedback.objects.create(study=study, stage=1, annotator=annotator, subject=subject, note="again")
    )


def test_subject_external_id_unique_within_study(study) -> None:
    Subject.objects.create(study=study, external_id="abc", source="wildchat")
    _raises_integrity(lambda: Subject.objects.create(study=study, external_id="abc", source="wildchat"))
    Subject.objects.create(study=study, external_id="abc", source="other-source")


def test_turn_index_unique_and_role_valid() -> None:
    conversation = ConversationFactory()
    Turn.objects.create(conversation=conversation, index=0, role="user", content="hi")
    _raises_integrity(lambda: Turn.objects.create(conversation=conversation, index=0, role="assistant", content="x"))
    _raises_integrity(lambda: Turn.objects.create(conversation=conversation, index=1, role="robot", content="x"))


def test_imported_attribute_text_unique_per_subject_and_level() -> None:
    subject = SubjectFactory()
    Attribute.objects.create(subject=subject, text="Is vegetarian")
    _raises_integrity(lambda: Attribute.objects.create(subject=subject, text="Is vegetarian"))
    Attribute.objects.create(subject=subject, text="Is vegetarian", level=Attribute.Level.ORIGINAL)


def test_attribute_from_a_model_names_its_run() -> None:
    subject = SubjectFactory()
    _raises_integrity(lambda: Attribute.objects.create(subject=subject, text="x", origin=Attribute.Origin.MODEL))
    run = ModelRunFactory(study=subject.study, step="extract")
    Attribute.objects.create(subject=subject, text="x", origin=Attribute.Origin.MODEL, model_run=run)
    # The same text from the same run cannot be stored twice.
    _raises_integrity(
        lambda: Attribute.objects.create(subject=subject, text="x", origin=Attribute.Origin.MODEL, model_run=run)
    )


def test_attribute_confidence_between_zero_and_one() -> None:
    _raises_integrity(lambda: AttributeFactory(confidence=1.5))


def test_prompt_text_unique_per_study(study) -> None:
    Prompt.objects.create(study=study, text="Plan my week")
    _raises_integrity(lambda: Prompt.objects.create(study=study, text="Plan my week"))


def test_response_one_per_run_pair_and_mode(study) -> None:
    pair = SubjectPromptFactory(subject=SubjectFactory(study=study))
    run = ModelRunFactory(study=study, step="generate")
    ResponseFactory(pair=pair, model_run=run, mode=Response.Mode.GENERIC)
    _raises_integrity(lambda: ResponseFactory(pair=pair, model_run=run, mode=Response.Mode.GENERIC))
    ResponseFactory(pair=pair, model_run=run, mode=Response.Mode.ALL_ATTRIBUTES)


def test_study_stage_settings_unique_and_positive(study) -> None:
    _raises_integrity(lambda: StudyStage.objects.create(study=study, stage=1))
    StudyStage.objects.filter(study=study, stage=1).delete()
    _raises_integrity(lambda: StudyStage.objects.create(study=study, stage=1, judgments_per_item=0))
