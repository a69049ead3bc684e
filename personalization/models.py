"""The research domain: studies, the people studied, their conversations, what models inferred
about them, the prompts they are asked, the responses written for them, and the model runs that
made every machine-made row.

Provenance rule: every row a model wrote points at its ModelRun; rows a researcher brought in
have `model_run = NULL` and `origin = "imported"`.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Stage(models.IntegerChoices):
    CORRECTNESS = 1, "Attribute correctness"
    RELEVANCE = 2, "Attribute relevance"
    PREFERENCE = 3, "Personalized vs generic"


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="owned_studies")
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="annotated_studies", blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Registry names (personalization.backends.registry); blank means the site default.
    extractor_model = models.CharField(max_length=100, blank=True)
    generator_model = models.CharField(max_length=100, blank=True)
    judge_model = models.CharField(max_length=100, blank=True)
    embedding_model = models.CharField(max_length=100, blank=True)
    # Study design: subject-prompt pairing caps and the seed that made the pairing reproducible.
    prompts_per_subject_min = models.PositiveSmallIntegerField(default=2)
    prompts_per_subject_max = models.PositiveSmallIntegerField(default=5)
    subjects_per_prompt_min = models.PositiveSmallIntegerField(default=2)
    subjects_per_prompt_max = models.PositiveSmallIntegerField(default=4)
    pairing_seed = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(prompts_per_subject_min__lte=models.F("prompts_per_subject_max")),
                name="study_prompt_caps_ordered",
            ),
            models.CheckConstraint(
                condition=Q(subjects_per_prompt_min__lte=models.F("subjects_per_prompt_max")),
                name="study_subject_caps_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StudyStage(models.Model):
    """Per-stage settings of a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stages")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    judgments_per_item = models.PositiveSmallIntegerField(default=3)
    lease_seconds = models.PositiveIntegerField(default=900)
    # Stage 2 only takes attributes stage 1 accepted; stage 3 only those stage 2 judged relevant.
    gate_on_previous_stage = models.BooleanField(default=False)

    class Meta:
        ordering = ["study", "stage"]
        constraints = [
            models.UniqueConstraint(fields=["study", "stage"], name="studystage_unique"),
            models.CheckConstraint(condition=Q(judgments_per_item__gte=1), name="studystage_k_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="studystage_lease_min"),
        ]

    def __str__(self) -> str:
        return f"{self.study} / stage {self.stage}"


class Guideline(models.Model):
    """Versioned instructions for one stage. A judgment records the version it was made under."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="guidelines")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["study", "stage", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["study", "stage", "version"], name="guideline_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study} stage {self.stage} v{self.version}"


class Subject(models.Model):
    """The person whose conversations are studied."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="subjects")
    external_id = models.CharField(max_length=200, help_text="e.g. WildChat's hashed_ip")
    source = models.CharField(max_length=100, help_text="e.g. wildchat, or a synthetic benchmark's name")
    is_synthetic = models.BooleanField(default=False)
    # Lets a subject judge what was inferred about themselves (first-person view).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="subject_profiles"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "source", "external_id"], name="subject_unique_per_study"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Conversation(models.Model):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="conversations")
    # WildChat's conversation_hash, or the sha256 of the turns when the source has none:
    # the key that makes re-imports idempotent.
    conversation_hash = models.CharField(max_length=128)
    model = models.CharField(max_length=200, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "timestamp", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "conversation_hash"], name="conversation_unique_per_subject"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.conversation_hash[:12]}"


class Turn(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system", "System"
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField()

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="turn_unique_index"),
            models.CheckConstraint(condition=Q(role__in=["system", "user", "assistant"]), name="turn_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.index}"


class RegisteredModel(models.Model):
    """A named model a study can choose ("extractor = X, judge = Y").

    Site defaults are defined in code (personalization.backends.registry); rows here add to
    or override them. An OpenAI-compatible model names a server from settings, never a URL,
    so a URL can only come from an administrator's configuration.
    """

    class Backend(models.TextChoices):
        HF_LOCAL = "hf_local", "Local Hugging Face (transformers)"
        OPENAI = "openai", "OpenAI-compatible server"
        SENTENCE_TRANSFORMERS = "sentence_transformers", "Local sentence embeddings"

    name = models.SlugField(max_length=100, unique=True)
    backend = models.CharField(max_length=30, choices=Backend.choices)
    model_id = models.CharField(max_length=300, help_text="Hub-style id (ORG/NAME) or a local directory")
    revision = models.CharField(max_length=100, blank=True)
    server = models.CharField(max_length=100, blank=True, help_text="Key of ATTUNE_OPENAI_SERVERS")
    default_params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelRun(models.Model):
    """One batch of machine work for a study: a step, a model, a template and parameters."""

    class Step(models.TextChoices):
        EXTRACT = "extract", "Extract attributes"
        MERGE = "merge", "Merge attributes"
        RELEVANCE = "relevance", "Judge relevance"
        GENERATE = "generate", "Generate responses"
        JUDGE_CORRECTNESS = "judge_correctness", "Judge attribute correctness"
        JUDGE_PREFERENCE = "judge_preference", "Judge personalized vs generic"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="model_runs")
    step = models.CharField(max_length=30, choices=Step.choices)
    model_name = models.CharField(max_length=100, help_text="Registry name")
    model_id = models.CharField(max_length=300)
    revision = models.CharField(max_length=100, blank=True)
    backend = models.CharField(max_length=30)
    params = models.JSONField(default=dict, blank=True)
    template_name = models.CharField(max_length=200, blank=True)
    template_hash = models.CharField(max_length=64, blank=True)
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total_count = models.PositiveIntegerField(default=0)
    done_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    generated_tokens = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["study", "step", "status"])]

    def __str__(self) -> str:
        return f"{self.step} run #{self.pk} ({self.model_name})"


class ModelRunItem(models.Model):
    """One unit of work of a run (a conversation to extract from, a prompt-attribute pair to judge...).

    The unique key makes a run resumable and safe to execute twice: a worker only does the
    items that are not yet done, and a second worker cannot record the same item again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="items")
    input_key = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "input_key"], name="runitem_unique_input")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.input_key}"


class Attribute(models.Model):
    """Something inferred about a subject.

    `original` attributes come from one conversation; `merged` ones summarize a cluster of
    originals (kept in `merged_from`). Annotators judge merged attributes.
    """

    class Level(models.TextChoices):
        ORIGINAL = "original", "Original (per conversation)"
        MERGED = "merged", "Merged (per subject)"

    class Origin(models.TextChoices):
        IMPORTED = "imported", "Imported"
        MODEL = "model", "Model run"
        HUMAN = "human", "Suggested by an annotator"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="attributes")
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.MERGED)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.IMPORTED)
    text = models.TextField()
    reason = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)
    evidence_turns = models.ManyToManyField(Turn, blank=True, related_name="evidence_for")
    merged_from = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="merged_into")
    model_run = models.ForeignKey(ModelRun, null=True, blank=True, on_delete=models.CASCADE, related_name="attributes")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "id"]
        constraints = [
            # Re-importing the same file stores nothing twice.
            models.UniqueConstraint(
                fields=["subject", "level", "text"],
                condition=Q(model_run__isnull=True),
                name="attribute_unique_imported",
            ),
            models.UniqueConstraint(
                fields=["subject", "level", "text", "model_run"],
                condition=Q(model_run__isnull=False),
                name="attribute_unique_per_run",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="attribute_confidence_range",
            ),
            models.CheckConstraint(
                condition=Q(origin="model", model_run__isnull=False) | (~Q(origin="model") & Q(model_run__isnull=True)),
                name="attribute_origin_matches_run",
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Prompt(models.Model):
    """A new request a subject might make (e.g. from LIMA)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=100, blank=True)
    source_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "text_hash"], name="prompt_unique_text_per_study")]

    def __str__(self) -> str:
        return self.text[:80]

    def save(self, *args: object, **kwargs: object) -> None:
        self.text_hash = text_sha256(self.text)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class SubjectPrompt(models.Model):
    """A subject paired with a prompt: the unit that gets a generic and personalized responses."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "prompt"]
        constraints = [models.UniqueConstraint(fields=["subject", "prompt"], name="pair_unique")]

    def __str__(self) -> str:
        return f"{self.subject} × prompt {self.prompt_id}"


class Response(models.Model):
    class Mode(models.TextChoices):
        GENERIC = "generic", "Generic (no profile)"
        ALL_ATTRIBUTES = "all_attributes", "All attributes"
        SELECTED_ATTRIBUTES = "selected_attributes", "Model-selected attributes"
        HUMAN_RELEVANT_ATTRIBUTES = "human_relevant_attributes", "Human-relevant attributes"

    pair = models.ForeignKey(SubjectPrompt, on_delete=models.CASCADE, related_name="responses")
    mode = models.CharField(max_length=30, choices=Mode.choices)
    text = models.TextField()
    conditioned_on = models.ManyToManyField(Attribute, blank=True, related_name="responses")
    model_run = models.ForeignKey(ModelRun, null=True, blank=True, on_delete=models.CASCADE, related_name="responses")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pair", "mode", "id"]
        constraints = [
            # One output per (run, input, mode): a task that runs twice cannot write twice.
            models.UniqueConstraint(
                fields=["pair", "mode", "model_run"],
                condition=Q(model_run__isnull=False),
                name="response_unique_per_run",
            ),
            models.UniqueConstraint(
                fields=["pair", "mode"], condition=Q(model_run__isnull=True), name="response_unique_imported"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mode} response to pair {self.pair_id}"
