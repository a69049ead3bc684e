"""Model run pages: the study's runs with start forms and live progress, and one run's outputs."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate.access import study_get_for_owner
from annotate.runs import run_cancel, run_get_for_owner, run_params_parse, run_progress, run_resume, run_start
from judgments.models import Judgment
from personalization import selectors
from personalization.backends.registry import available_models
from personalization.models import ModelRun

STEP_HELP: dict[str, str] = {
    ModelRun.Step.EXTRACT: "Attributes from each conversation (JSON output, repaired up to max_repairs times).",
    ModelRun.Step.MERGE: "Cluster each subject's extracted attributes by embedding similarity (threshold=0.7).",
    ModelRun.Step.RELEVANCE: "Model stage-2 votes per (prompt, attribute): method=logprobs or method=embedding.",
    ModelRun.Step.GENERATE: "Responses per pair. modes=generic,all_attributes,selected_attributes,"
    "human_relevant_attributes",
    ModelRun.Step.JUDGE_CORRECTNESS: "Model stage-1 labels per merged attribute.",
    ModelRun.Step.JUDGE_PREFERENCE: "Model stage-3 ratings, blind A/B like the human screen.",
}


class RunStartForm(forms.Form):
    step = forms.ChoiceField(choices=ModelRun.Step.choices)
    model_name = forms.CharField(required=False, max_length=100)
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    seed = forms.IntegerField(required=False, min_value=0, initial=0)


def _list_url(study_id: int) -> str:
    return reverse("runs:list", args=[study_id])


@require_GET
def runs_list(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_get_for_owner(user=request.user, study_id=study_id)
    runs = list(selectors.model_runs_of_study(study=study)[:100])
    steps = [{"value": value, "label": label, "help": STEP_HELP[value]} for value, label in ModelRun.Step.choices]
    return render(
        request,
        "runs/list.html",
        {
            "study": study,
            "runs": runs,
            "steps": steps,
            "models": [spec.name for spec in available_models()],
            "active_statuses": [ModelRun.Status.PENDING, ModelRun.Status.RUNNING],
        },
    )


@require_POST
def run_start_view(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_get_for_owner(user=request.user, study_id=study_id)
    form = RunStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Run not started: {form.errors.as_text()}")
        return redirect(_list_url(study.pk))
    try:
        run = run_start(
            study=study,
            step=form.cleaned_data["step"],
            user=request.user,
            model_name=form.cleaned_data["model_name"] or None,
            params=run_params_parse(form.cleaned_data["params"] or ""),
            seed=form.cleaned_data["seed"] or 0,
        )
    except ValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else {"error": error.messages}
        text = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in detail.items())
        messages.error(request, f"Run not started: {text}")
        return redirect(_list_url(study.pk))
    messages.success(request, f"Started {run.get_step_display().lower()} run #{run.pk} ({run.total_count} items).")
    return redirect(_list_url(study.pk))


@require_POST
def run_cancel_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_owner(user=request.user, run_id=run_id)
    run_cancel(run=run, user=request.user)
    messages.info(request, f"Run #{run.pk} is {run.get_status_display().lower()}.")
    return redirect(_list_url(run.study_id))


@require_POST
def run_resume_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_owner(user=request.user, run_id=run_id)
    run_resume(run=run, user=request.user, retry_failed=request.POST.get("retry_failed") == "1")
    messages.info(request, f"Run #{run.pk} is {run.get_status_display().lower()}.")
    return redirect(_list_url(run.study_id))


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_owner(user=request.user, run_id=run_id)
    judgments = (
        Judgment.objects.filter(model_run=run)
        .select_related("attribute", "prompt", "subject", "pair__prompt")
        .order_by("id")[:50]
    )
    return render(
        request,
        "runs/detail.html",
        {
            "run": run,
            "study": run.study,
            "progress": run_progress(run=run),
            "attributes": selectors.run_attributes(run=run),
            "responses": selectors.run_responses(run=run),
            "judgments": judgments,
            "failed_items": selectors.run_failed_items(run=run, limit=20),
            "active_statuses": [ModelRun.Status.PENDING, ModelRun.Status.RUNNING],
        },
    )
