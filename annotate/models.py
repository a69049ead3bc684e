"""Studies in motion: the units of work of each stage (Item) and who holds or has judged them
(Assignment).

Counting rule, enforced by the database and kept by annotate.services:
- `Item.k` third-party annotators judge an item. `slots_taken` counts the third-party
  assignments that hold a slot (live leases and submissions); `done_count` counts the
  submitted ones. Check constraints keep `done_count <= slots_taken <= k`, and the unique
  (item, annotator) constraint keeps one assignment per annotator per item, so an item can
  never collect more than k third-party judgments.
- A first-person assignment (stage 1, the subject judging what was inferred about themselves)
  holds no slot and does not count towards `done_count`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from personalization.models import Attribute, Prompt, Response, Stage, Study, Subject, SubjectPrompt


class Item(models.Model):
    """One unit of work of a stage: a subject (stage 1), a prompt (stage 2) or a pair (stage 3),
    with the attributes judged on it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE, related_name="items")
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey(SubjectPrompt, null=True, blank=True, on_delete=models.CASCADE, related_name="items")
    attributes = models.ManyToManyField(Attribute, related_name="items")
    generic_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="items_as_generic"
    )
    personalized_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="items_as_personalized"
    )
    k = models.PositiveSmallIntegerField(default=3, help_text="Third-party judgments wanted")
    # Fixes the attribute order shown in stage 2 and the side of the personalized response in stage 3.
    seed = models.BigIntegerField(default=0)
    slots_taken = models.PositiveSmallIntegerField(default=0)
    done_count = models.PositiveSmallIntegerField(default=0)
    # Taken out by a researcher before anyone was assigned it: never offered, not counted in
    # progress, and not built again (the row stays, so "build" sees the target as done).
    withdrawn = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "stage", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "stage", "subject"], condition=Q(stage=1), name="item_s1_unique"),
            models.UniqueConstraint(fields=["study", "stage", "prompt"], condition=Q(stage=2), name="item_s2_unique"),
            models.UniqueConstraint(fields=["study", "stage", "pair"], condition=Q(stage=3), name="item_s3_unique"),
            models.CheckConstraint(
                condition=(Q(stage=1) & Q(subject__isnull=False) & Q(prompt__isnull=True) & Q(pair__isnull=True))
                | (Q(stage=2) & Q(prompt__isnull=False) & Q(subject__isnull=True) & Q(pair__isnull=True))
                | (
                    Q(stage=3)
                    & Q(pair__isnull=False)
                    & Q(subject__isnull=True)
                    & Q(prompt__isnull=True)
                    & Q(generic_response__isnull=False)
                    & Q(personalized_response__isnull=False)
                ),
                name="item_target_matches_stage",
            ),
            models.CheckConstraint(condition=Q(k__gte=1), name="item_k_positive"),
            # The last line of defence against over-assignment: a claim that would exceed k fails.
            models.CheckConstraint(condition=Q(slots_taken__lte=F("k")), name="item_slots_within_k"),
            models.CheckConstraint(condition=Q(done_count__lte=F("slots_taken")), name="item_done_within_slots"),
        ]
        indexes = [
            # Serves "next item": open items of a stage, closest to completion first.
            models.Index(
                F("study"),
                F("stage"),
                F("done_count").desc(),
                F("id"),
                condition=Q(slots_taken__lt=F("k"), withdrawn=False),
                name="item_open_by_completion",
            ),
        ]

    def __str__(self) -> str:
        target = self.subject_id or self.prompt_id or self.pair_id
        return f"S{self.stage} item #{self.pk} ({target})"

    @property
    def target_label(self) -> str:
        if self.stage == Stage.CORRECTNESS:
            return f"subject {self.subject_id}"
        if self.stage == Stage.RELEVANCE:
            return f"prompt {self.prompt_id}"
        return f"pair {self.pair_id}"


class Assignment(models.Model):
    """An annotator's lease on an item, and later their submission (or skip) of it."""

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    class Side(models.TextChoices):
        A = "A", "Left / A"
        B = "B", "Right / B"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    # Copies of item.study / item.stage so the hot queries (my live lease, my progress) need no join.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    # The subject judging their own attributes: holds no third-party slot (see the module docstring).
    first_person = models.BooleanField(default=False)
    lease_expires_at = models.DateTimeField()
    # Stage 3 only: the side the personalized response is shown on; blank for stages 1 and 2.
    personalized_side = models.CharField(max_length=1, choices=Side.choices, blank=True)
    draft = models.JSONField(default=dict, blank=True)
    active_ms = models.PositiveIntegerField(default=0)
    skip_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_one_per_annotator"),
            models.CheckConstraint(
                condition=~Q(stage=3) | Q(personalized_side__in=["A", "B"]), name="assignment_s3_side_set"
            ),
            models.CheckConstraint(
                condition=Q(status="submitted", submitted_at__isnull=False) | ~Q(status="submitted"),
                name="assignment_submitted_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "study", "stage", "status"], name="assignment_mine"),
            # Serves the lease sweeper: only live leases are scanned.
            models.Index(
                fields=["study", "stage", "lease_expires_at"],
                condition=Q(status="leased"),
                name="assignment_live_leases",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment #{self.pk} of item {self.item_id} to user {self.annotator_id} ({self.status})"
