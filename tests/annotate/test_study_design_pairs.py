"""annotate.design.study_design_pairs: pairing under caps with a recorded seed."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.exceptions import ValidationError

from annotate.services import study_design_pairs
from personalization.models import Study, SubjectPrompt
from tests.factories import PromptFactory, SubjectFactory

pytestmark = pytest.mark.django_db


def _populate(study: Study, subjects: int, prompts: int) -> None:
    SubjectFactory.create_batch(subjects, study=study)
    PromptFactory.create_batch(prompts, study=study)


@pytest.mark.parametrize(("subjects", "prompts"), [(12, 15), (15, 12), (20, 10), (3, 3), (50, 50), (7, 16)])
def test_pairs_respect_both_caps(study, subjects: int, prompts: int) -> None:
    _populate(study, subjects, prompts)
    pairs = study_design_pairs(study=study, seed=7)
    per_subject = Counter(p.subject_id for p in pairs)
    per_prompt = Counter(p.prompt_id for p in pairs)
    assert len(per_subject) == subjects and len(per_prompt) == prompts
    assert all(study.prompts_per_subject_min <= n <= study.prompts_per_subject_max for n in per_subject.values())
    assert all(study.subjects_per_prompt_min <= n <= study.subjects_per_prompt_max for n in per_prompt.values())
    assert len({(p.subject_id, p.prompt_id) for p in pairs}) == len(pairs)
    study.refresh_from_db()
    assert study.pairing_seed == 7


def test_same_seed_same_design(owner) -> None:
    designs = []
    for _ in range(2):
        study = Study.objects.create(name="s")
        _populate(study, 10, 12)
        pairs = study_design_pairs(study=study, seed=42)
        subjects = sorted(study.subjects.values_list("id", flat=True))
        prompts = sorted(study.prompts.values_list("id", flat=True))
        designs.append(sorted((subjects.index(p.subject_id), prompts.index(p.prompt_id)) for p in pairs))
    assert designs[0] == designs[1]


def test_seed_is_drawn_and_recorded_when_not_given_and_design_is_idempotent(study) -> None:
    _populate(study, 6, 6)
    first = study_design_pairs(study=study)
    study.refresh_from_db()
    assert study.pairing_seed is not None
    assert [p.pk for p in study_design_pairs(study=study)] == [p.pk for p in first]
    assert [p.pk for p in study_design_pairs(study=study, seed=study.pairing_seed)] == [p.pk for p in first]
    with pytest.raises(ValidationError, match="cannot be re-paired"):
        study_design_pairs(study=study, seed=study.pairing_seed + 1)
    assert SubjectPrompt.objects.filter(subject__study=study).count() == len(first)


@pytest.mark.parametrize(("subjects", "prompts"), [(4, 1), (30, 8), (5, 40)])
def test_impossible_caps_are_explained(study, subjects: int, prompts: int) -> None:
    _populate(study, subjects, prompts)
    with pytest.raises(
        ValidationError, match=rf"{subjects} subject\(s\) and {prompts} prompt\(s\) cannot meet the caps"
    ):
        study_design_pairs(study=study, seed=1)
    assert not SubjectPrompt.objects.exists()


def test_empty_study_is_explained(study) -> None:
    with pytest.raises(ValidationError, match="needs at least one of each"):
        study_design_pairs(study=study)
