"""What humans and models said about personalization objects.

A judgment is always about one attribute within one item:
- stage 1 (correctness): item = a subject; answer makes_sense / maybe / doesnt_make_sense
- stage 2 (relevance):   item = a prompt;  answer yes / no
- stage 3 (preference):  item = a subject-prompt pair (generic vs personalized response);
                         answer "1".."5", always in terms of personalized-vs-generic
                         (5 = personalized much better), whatever side it was shown on.

The rater is either a human (`annotator`) or a model (`model_run`), never both. Conditional
unique constraints make a second judgment by the same rater of the same item-attribute
impossible, whatever the application code does.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from personalization.models import Attribute, ModelRun, Prompt, Response, Stage, Study, Subject, SubjectPrompt

S1_ANSWERS = ("makes_sense", "maybe", "doesnt_make_sense")
S2_ANSWERS = ("yes", "no")
S3_ANSWERS = ("1", "2", "3", "4", "5")
ANSWERS_BY_STAGE: dict[int, tuple[str, ...]] = {1: S1_ANSWERS, 2: S2_ANSWERS, 3: S3_ANSWERS}
ITEM_FIELD_BY_STAGE: dict[int, str] = {1: "subject", 2: "prompt", 3: "pair"}


def _one_per_rater(stage: int, rater: str) -> models.UniqueConstraint:
    item = ITEM_FIELD_BY_STAGE[stage]
    return models.UniqueConstraint(
        fields=[rater, item, "attribute"],
        condition=Q(stage=stage, **{f"{rater}__isnull": False}),
        name=f"judgment_one_per_{rater}_s{stage}",
    )


class Judgment(models.Model):
    class Side(models.TextChoices):
        A = "A", "Left / A"
        B = "B", "Right / B"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="judgments")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments"
    )
    model_run = models.ForeignKey(ModelRun, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    pair = models.ForeignKey(SubjectPrompt, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    attribute = models.ForeignKey(Attribute, on_delete=models.CASCADE, related_name="judgments")
    answer = models.CharField(max_length=20)
    # Stage 3: the two responses and which side the personalized one was shown on.
    generic_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments_as_generic"
    )
    personalized_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments_as_personalized"
    )
    personalized_side = models.CharField(max_length=1, choices=Side.choices, blank=True)
    note = models.TextField(blank=True)
    flag = models.BooleanField(default=False)
    time_spent_ms = models.PositiveIntegerField(default=0)
    guidelines_version = models.PositiveIntegerField(null=True, blank=True)
    # Model raters: what the model said, verbatim, beside the parsed answer.
    raw_output = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "stage", "id"]
        indexes = [
            models.Index(fields=["study", "stage", "attribute"]),
            models.Index(fields=["study", "stage", "annotator"]),
        ]
        constraints = [
            *[_one_per_rater(stage, rater) for stage in (1, 2, 3) for rater in ("annotator", "model_run")],
            models.CheckConstraint(
                condition=(Q(annotator__isnull=False) & Q(model_run__isnull=True))
                | (Q(annotator__isnull=True) & Q(model_run__isnull=False)),
                name="judgment_exactly_one_rater",
            ),
            models.CheckConstraint(
                condition=(Q(stage=1) & Q(subject__isnull=False) & Q(prompt__isnull=True) & Q(pair__isnull=True))
                | (Q(stage=2) & Q(prompt__isnull=False) & Q(subject__isnull=True) & Q(pair__isnull=True))
                | (Q(stage=3) & Q(pair__isnull=False) & Q(subject__isnull=True) & Q(prompt__isnull=True)),
                name="judgment_item_matches_stage",
            ),
            models.CheckConstraint(
                condition=Q(stage=1, answer__in=S1_ANSWERS)
                | Q(stage=2, answer__in=S2_ANSWERS)
                | Q(stage=3, answer__in=S3_ANSWERS),
                name="judgment_answer_valid_for_stage",
            ),
            models.CheckConstraint(
                condition=~Q(stage=3) | Q(personalized_side__in=["A", "B"]),
                name="judgment_s3_side_recorded",
            ),
        ]

    def __str__(self) -> str:
        rater = f"user {self.annotator_id}" if self.annotator_id else f"run {self.model_run_id}"
        return f"S{self.stage} {rater} on attribute {self.attribute_id}: {self.answer}"


class JudgmentRevision(models.Model):
    """An earlier state of a judgment, kept when an annotator changes their mind."""

    judgment = models.ForeignKey(Judgment, on_delete=models.CASCADE, related_name="revisions")
    answer = models.CharField(max_length=20)
    note = models.TextField(blank=True)
    flag = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["judgment", "recorded_at", "id"]

    def __str__(self) -> str:
        return f"revision of judgment {self.judgment_id}: {self.answer}"


class ItemFeedback(models.Model):
    """What an annotator said about a whole item rather than one attribute: the overall note,
    stage 1's missing attributes, a flag for uncomfortable content, and the time spent."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="item_feedback")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="item_feedback")
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE)
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.CASCADE)
    pair = models.ForeignKey(SubjectPrompt, null=True, blank=True, on_delete=models.CASCADE)
    note = models.TextField(blank=True)
    missing_attributes = models.TextField(blank=True)
    flag = models.BooleanField(default=False)
    time_spent_ms = models.PositiveIntegerField(default=0)
    guidelines_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "stage", "id"]
        constraints = [
            *[
                models.UniqueConstraint(
                    fields=["annotator", ITEM_FIELD_BY_STAGE[stage]],
                    condition=Q(stage=stage),
                    name=f"itemfeedback_one_per_annotator_s{stage}",
                )
                for stage in (1, 2, 3)
            ],
            models.CheckConstraint(
                condition=(Q(stage=1) & Q(subject__isnull=False) & Q(prompt__isnull=True) & Q(pair__isnull=True))
                | (Q(stage=2) & Q(prompt__isnull=False) & Q(subject__isnull=True) & Q(pair__isnull=True))
                | (Q(stage=3) & Q(pair__isnull=False) & Q(subject__isnull=True) & Q(prompt__isnull=True)),
                name="itemfeedback_item_matches_stage",
            ),
        ]

    def __str__(self) -> str:
        return f"S{self.stage} feedback by user {self.annotator_id}"
