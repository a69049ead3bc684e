"""Forms of the researcher pages: study settings, per-stage settings with guidelines, pairing
and item building. Field errors name the field; the page shows them beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.models import Item
from personalization.models import Guideline, Response, Stage, Study, StudyStage
from personalization.services import guideline_publish, study_stage_configure

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Starting guidelines for a new study, from the definitions the annotators of the original
# study worked with. Researchers edit them on the setup page; each change is a new version.
DEFAULT_GUIDELINES: dict[int, str] = {
    Stage.CORRECTNESS: (
        "Read the person's conversations. For each attribute the model inferred, decide whether the "
        "conversations support it.\n"
        "- Makes sense: the conversations clearly support it.\n"
        "- Maybe: plausible, but the evidence is weak or indirect.\n"
        "- Doesn't make sense: unsupported, contradicted, or not about this person.\n"
        "Use the evidence turns to check the model's reason, but judge from the whole history. "
        "Write attributes the model missed in the 'missing attributes' box."
    ),
    Stage.RELEVANCE: (
        "Read the prompt. For each attribute, answer: would this attribute change the response in any way, "
        "explicitly or implicitly? Answer YES if a good assistant who knew it would answer differently "
        "(content, examples, tone, level of detail), NO otherwise. The attributes come from several people; "
        "judge each on its own."
    ),
    Stage.PREFERENCE: (
        "Read the prompt and both responses. For each attribute, imagine the person has it and rate response B "
        "against response A: 1 = B much worse, 2 = B somewhat worse, 3 = no difference, 4 = B somewhat better, "
        "5 = B much better. Mentioning an attribute does not by itself make a response better: judge whether the "
        "response is more useful to that person."
    ),
}


class StudyForm(forms.ModelForm):
    """A study's own fields. Owners are set by the view (the creator), never from the form."""

    annotators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="People who may annotate this study.",
    )

    class Meta:
        model = Study
        fields = [
            "name",
            "description",
            "status",
            "annotators",
            "prompts_per_subject_min",
            "prompts_per_subject_max",
            "subjects_per_prompt_min",
            "subjects_per_prompt_max",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"status": "Annotators only get work while the study is open."}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        annotators = cast(forms.ModelMultipleChoiceField, self.fields["annotators"])
        annotators.queryset = get_user_model().objects.filter(is_active=True).order_by("username")

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        for low, high, what in (
            ("prompts_per_subject_min", "prompts_per_subject_max", "prompts per subject"),
            ("subjects_per_prompt_min", "subjects_per_prompt_max", "subjects per prompt"),
        ):
            if cleaned.get(low) is not None and cleaned.get(high) is not None and cleaned[low] > cleaned[high]:
                self.add_error(high, f"The maximum {what} must be at least the minimum ({cleaned[low]}).")
        return cleaned


class StageSettingsForm(forms.Form):
    """One stage's settings and guidelines; rendered three times with prefixes stage1..stage3."""

    judgments_per_item = forms.IntegerField(
        min_value=1, max_value=50, initial=3, label="Judgments per item (k)", help_text="Different annotators per item."
    )
    lease_seconds = forms.IntegerField(
        min_value=30,
        max_value=24 * 3600,
        initial=900,
        label="Lease (seconds)",
        help_text="An abandoned item returns to the pool after this long.",
    )
    gate_on_previous_stage = forms.BooleanField(required=False, label="Only take what the previous stage accepted")
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Guidelines",
        help_text="Shown to annotators. Saving a change publishes a new version; judgments record the version.",
    )

    def __init__(self, *args: object, stage: int, **kwargs: object) -> None:
        kwargs.setdefault("prefix", f"stage{stage}")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stage = stage
        if stage == Stage.CORRECTNESS:
            # Stage 1 is the first stage: nothing to gate on.
            del self.fields["gate_on_previous_stage"]
        elif stage == Stage.RELEVANCE:
            self.fields["gate_on_previous_stage"].help_text = "Pool only attributes stage 1 accepted (majority)."
        else:
            self.fields["gate_on_previous_stage"].help_text = "Judge only attributes stage 2 found relevant."

    @classmethod
    def for_study(cls, *, study: Study | None, stage: int, data: object = None) -> StageSettingsForm:
        """A form filled from the study's current settings and latest guidelines (defaults for a new study)."""
        initial: dict[str, object] = {"guidelines": DEFAULT_GUIDELINES[stage]}
        if study is not None:
            settings = StudyStage.objects.filter(study=study, stage=stage).first()
            if settings is not None:
                initial.update(
                    judgments_per_item=settings.judgments_per_item,
                    lease_seconds=settings.lease_seconds,
                    gate_on_previous_stage=settings.gate_on_previous_stage,
                )
            latest = Guideline.objects.filter(study=study, stage=stage).order_by("-version").first()
            if latest is not None:
                initial["guidelines"] = latest.text
        return cls(data, stage=stage, initial=initial)

    def save(self, *, study: Study, user: User) -> Guideline | None:
        """Writes the stage settings; publishes a new guideline version only when the text changed.
        Returns the new Guideline, or None when the text was unchanged. Call inside a transaction."""
        data = self.cleaned_data
        study_stage_configure(
            study=study,
            stage=self.stage,
            judgments_per_item=data["judgments_per_item"],
            lease_seconds=data["lease_seconds"],
            gate_on_previous_stage=bool(data.get("gate_on_previous_stage", False)),
        )
        return guideline_publish(study=study, stage=self.stage, text=data["guidelines"], user=user)


def stage_forms(*, study: Study | None, data: object = None) -> list[StageSettingsForm]:
    return [StageSettingsForm.for_study(study=study, stage=stage.value, data=data) for stage in Stage]


@transaction.atomic
def study_settings_save(
    *, study_form: StudyForm, stage_settings: list[StageSettingsForm], user: User, create: bool
) -> tuple[Study, list[Guideline]]:
    """Saves a valid study form and its stage forms in one transaction. On create the user becomes
    the study's owner. Returns the study and the guideline versions published by this save."""
    study = study_form.save()
    if create:
        study.owners.add(user)
    published = [g for form in stage_settings if (g := form.save(study=study, user=user)) is not None]
    return study, published


class PairingForm(forms.Form):
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**62,
        help_text="Leave empty for a fresh random seed; the seed used is recorded on the study.",
    )


class BuildItemsForm(forms.Form):
    stage = forms.TypedChoiceField(choices=Stage.choices, coerce=int)
    personalized_mode = forms.ChoiceField(
        required=False,
        label="Personalized response",
        choices=[("", "Any (all attributes, then model-selected, then human-relevant)")]
        + [(mode.value, mode.label) for mode in Response.Mode if mode != Response.Mode.GENERIC],
        help_text="Which personalized response stage 3 compares with the generic one.",
    )


class ItemChoiceForm(forms.Form):
    """What an untouched item shows: its attributes and, in stage 3, the two responses compared.
    Choices come from annotate.selectors.item_overview; the service checks them again."""

    attributes = forms.TypedMultipleChoiceField(
        coerce=int, widget=forms.CheckboxSelectMultiple, label="Attributes to judge", required=False
    )
    generic_response = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, required=False)
    personalized_response = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, required=False)

    def __init__(self, *args: object, item: Item, overview: dict, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        attributes = cast(forms.TypedMultipleChoiceField, self.fields["attributes"])
        attributes.choices = [(a["id"], a["text"]) for a in overview["attributes"]]
        attributes.initial = [a["id"] for a in overview["attributes"] if a["chosen"]]
        if item.stage == Stage.PREFERENCE:
            generic = cast(forms.TypedChoiceField, self.fields["generic_response"])
            personalized = cast(forms.TypedChoiceField, self.fields["personalized_response"])
            generic.choices = [(r["id"], f"#{r['id']}") for r in overview["responses"] if r["is_generic"]]
            personalized.choices = [(r["id"], f"#{r['id']}") for r in overview["responses"] if not r["is_generic"]]
            generic.initial, personalized.initial = item.generic_response_id, item.personalized_response_id
            generic.required = personalized.required = True
        else:
            del self.fields["generic_response"], self.fields["personalized_response"]


class ItemsActionForm(forms.Form):
    """Withdraw or restore several items of a stage at once, from the item list."""

    action = forms.ChoiceField(choices=[("withdraw", "Withdraw"), ("restore", "Restore")])
    items = forms.ModelMultipleChoiceField(
        queryset=Item.objects.none(), error_messages={"required": "Tick some items first."}
    )

    def __init__(self, *args: object, study: Study, stage: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        items = cast(forms.ModelMultipleChoiceField, self.fields["items"])
        items.queryset = Item.objects.filter(study=study, stage=stage)
