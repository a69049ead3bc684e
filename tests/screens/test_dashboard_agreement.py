"""Agreement statistics of the dashboard, checked against published worked examples."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import User

from annotate.dashboard import cohen_kappa, fleiss_kappa, percent_agreement, stage_agreement
from judgments.models import Judgment
from personalization.models import Study
from tests.factories import AttributeFactory, SubjectFactory

# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_worked_example() -> None:
    units = [Counter({str(c): n for c, n in enumerate(row) if n}) for row in FLEISS_TABLE]
    assert fleiss_kappa(units) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_is_undefined_when_everyone_gives_one_answer() -> None:
    assert fleiss_kappa([Counter({"yes": 3}), Counter({"yes": 2})]) is None
    assert fleiss_kappa([Counter({"yes": 1})]) is None


def test_cohen_kappa_matches_the_worked_example() -> None:
    # 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_percent_agreement_counts_agreeing_rater_pairs() -> None:
    # 3 raters: 1 of 3 pairs agree; 2 raters agreeing: 1 of 1.
    assert percent_agreement([Counter({"a": 2, "b": 1}), Counter({"a": 2})]) == pytest.approx(2 / 4)


def test_stage_agreement_reads_human_judgments_per_unit(study: Study) -> None:
    raters = [User.objects.create_user(f"rater{i}") for i in range(3)]
    subject = SubjectFactory(study=study)
    attributes = [AttributeFactory(subject=subject) for _ in range(4)]
    answers = [
        ["makes_sense", "makes_sense", "makes_sense"],
        ["maybe", "makes_sense", "makes_sense"],
        ["doesnt_make_sense", "doesnt_make_sense", "maybe"],
        ["makes_sense", None, None],  # one rater only: not a unit
    ]
    for attribute, row in zip(attributes, answers, strict=True):
        for rater, answer in zip(raters, row, strict=True):
            if answer:
                Judgment.objects.create(
                    study=study, stage=1, annotator=rater, subject=subject, attribute=attribute, answer=answer
                )
    agreement = stage_agreement(study=study, stage=1)
    assert agreement.units == 3
    assert agreement.judgments == 10
    assert agreement.answer_counts == {"makes_sense": 6, "maybe": 2, "doesnt_make_sense": 2}
    expected = fleiss_kappa(
        [
            Counter({"makes_sense": 3}),
            Counter({"maybe": 1, "makes_sense": 2}),
            Counter({"doesnt_make_sense": 2, "maybe": 1}),
        ]
    )
    assert agreement.fleiss_kappa == pytest.approx(expected)
    assert agreement.percent_agreement == pytest.approx(5 / 9)
    assert agreement.cohen_pairs == 3
