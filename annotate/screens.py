"""Pages of the annotation layer: the study page, the annotation screen (an HTML shell driven by
static/js/annotate/ through the REST API), my judgments, the researcher dashboard and study setup.

Views are thin: an access helper decides who may see the study (404 for anyone else), selectors
read, services write. The annotation screen itself does all its work through the API, so the
browser and token clients share one code path.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods

from annotate import services
from annotate.access import (
    assignment_get_for_annotator,
    item_get_for_owner,
    study_get_for_member,
    study_get_for_owner,
)
from annotate.dashboard import (
    dashboard_annotators,
    dashboard_flags,
    dashboard_stages,
    stages_holding_lease,
    study_data_overview,
)
from annotate.design import item_choose, items_withdraw
from annotate.forms import (
    BuildItemsForm,
    ItemChoiceForm,
    ItemsActionForm,
    PairingForm,
    StudyForm,
    stage_forms,
    study_settings_save,
)
from annotate.selectors import (
    ITEM_STATES,
    item_overview,
    item_state,
    items_of_stage,
    judgments_of_annotator,
    study_progress,
)
from personalization.models import Stage, Study

# Stands in for an assignment id in API URL templates handed to the script, which substitutes
# the real id; reversing with it keeps the URLs defined in one place (api_urls.py).
URL_ID_PLACEHOLDER = 987654321
# What annotators read as the screen's title. Stage 3 does not say "personalized vs generic":
# knowing that one response is personalized invites looking for it instead of judging usefulness.
SCREEN_TITLES = {1: "Attribute correctness", 2: "Attribute relevance", 3: "Compare two responses"}
MY_JUDGMENTS_PAGE_SIZE = 50
ITEMS_PAGE_SIZE = 50


def _signed_in(request: HttpRequest) -> User:
    """The request's user. LoginRequiredMiddleware sends anonymous visitors to the login page
    before any of these views runs; this only makes that explicit (and typed)."""
    user = request.user
    if not isinstance(user, User):
        raise Http404("Log in first.")
    return user


def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    user = _signed_in(request)
    study = study_get_for_member(user=user, study_id=study_id)
    is_owner = study.owners.filter(pk=user.pk).exists()
    is_annotator = study.annotators.filter(pk=user.pk).exists()
    holding = stages_holding_lease(study=study, annotator=user)
    stages = []
    for stage in Stage:
        progress = study_progress(study=study, stage=stage.value, annotator=user)
        stages.append(
            {
                "number": stage.value,
                "label": SCREEN_TITLES[stage.value],
                "progress": progress,
                "has_work": bool(progress["mine_available"]) or stage.value in holding,
                "holding": stage.value in holding,
            }
        )
    return render(
        request,
        "annotate/study_detail.html",
        {
            "study": study,
            "stages": stages,
            "is_owner": is_owner,
            "is_annotator": is_annotator,
            "runs_url": _runs_url(study),
        },
    )


def annotate_work(request: HttpRequest, study_id: int, stage: int) -> HttpResponse:
    user = _signed_in(request)
    study = study_get_for_member(user=user, study_id=study_id)
    if stage not in Stage.values:
        raise Http404("No such stage.")
    if not study.annotators.filter(pk=user.pk).exists():
        # An owner who is not an annotator: work is only handed to annotators.
        messages.info(request, "Only the study's annotators are given work. Add yourself as one on the setup page.")
        return redirect("study-detail", study_id=study.pk)
    config = _screen_config(study=study, stage=stage, mode="work", assignment_id=None)
    return render(
        request,
        "annotate/work.html",
        {"study": study, "stage": Stage(stage), "title": SCREEN_TITLES[stage], "config": config},
    )


def assignment_edit(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = assignment_get_for_annotator(user=request.user, assignment_id=assignment_id)
    study = assignment.item.study
    stage = assignment.item.stage
    config = _screen_config(study=study, stage=stage, mode="edit", assignment_id=assignment.pk)
    if study.status != Study.Status.OPEN:
        config["readOnly"] = True
    return render(
        request,
        "annotate/work.html",
        {
            "study": study,
            "stage": Stage(stage),
            "title": SCREEN_TITLES[stage],
            "config": config,
            "assignment": assignment,
        },
    )


def my_judgments(request: HttpRequest, study_id: int) -> HttpResponse:
    user = _signed_in(request)
    study = study_get_for_member(user=user, study_id=study_id)
    assignments = judgments_of_annotator(study=study, annotator=user)
    page = Paginator(assignments, MY_JUDGMENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "annotate/my_judgments.html",
        {"study": study, "page": page, "editable": study.status == Study.Status.OPEN},
    )


def study_dashboard(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_get_for_owner(user=request.user, study_id=study_id)
    return render(
        request,
        "annotate/dashboard.html",
        {
            "study": study,
            "stages": dashboard_stages(study=study),
            "annotators": dashboard_annotators(study=study),
            "flags": dashboard_flags(study=study),
            "runs_url": _runs_url(study),
        },
    )


@require_http_methods(["GET", "POST"])
def study_create(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    # Any researcher (staff) may start a study; they become its first owner.
    if not user.is_staff:
        raise PermissionDenied("Only researchers (staff users) can create studies.")
    data = request.POST if request.method == "POST" else None
    study_form = StudyForm(data, initial={"status": Study.Status.DRAFT})
    stages = stage_forms(study=None, data=data)
    if data is not None and study_form.is_valid() and all(form.is_valid() for form in stages):
        study, _ = study_settings_save(study_form=study_form, stage_settings=stages, user=user, create=True)
        messages.success(request, f"Study “{study.name}” created. Pair subjects with prompts and build the items.")
        return redirect("study-design", study_id=study.pk)
    return render(request, "annotate/study_form.html", {"study_form": study_form, "stage_forms": stages})


@require_http_methods(["GET", "POST"])
def study_design(request: HttpRequest, study_id: int) -> HttpResponse:
    user = _signed_in(request)
    study = study_get_for_owner(user=user, study_id=study_id)
    action = request.POST.get("action") if request.method == "POST" else None
    data = request.POST if action == "settings" else None
    study_form = StudyForm(data, instance=study)
    stages = stage_forms(study=study, data=data)
    pairing_form = PairingForm(request.POST if action == "pair" else None)
    build_form = BuildItemsForm(request.POST if action == "build" else None)

    if action == "settings" and study_form.is_valid() and all(form.is_valid() for form in stages):
        _, published = study_settings_save(study_form=study_form, stage_settings=stages, user=user, create=False)
        versions = ", ".join(f"stage {g.stage} v{g.version}" for g in published)
        messages.success(request, "Settings saved." + (f" New guidelines: {versions}." if versions else ""))
        return redirect("study-design", study_id=study.pk)
    if action == "pair" and pairing_form.is_valid():
        try:
            with transaction.atomic():
                pairs = services.study_design_pairs(study=study, seed=pairing_form.cleaned_data["seed"])
        except ValidationError as error:
            messages.error(request, "Pairing failed: " + " ".join(error.messages))
        else:
            study.refresh_from_db(fields=["pairing_seed"])
            messages.success(request, f"{len(pairs)} subject-prompt pairs (seed {study.pairing_seed}).")
            return redirect("study-design", study_id=study.pk)
    if action == "build" and build_form.is_valid():
        stage = build_form.cleaned_data["stage"]
        try:
            with transaction.atomic():
                created = services.items_build(
                    study=study, stage=stage, personalized_mode=build_form.cleaned_data["personalized_mode"] or None
                )
        except ValidationError as error:
            messages.error(request, f"Building stage {stage} items failed: " + " ".join(error.messages))
        else:
            messages.success(request, f"Stage {stage}: {created} new items.")
            return redirect("study-design", study_id=study.pk)
    if action == "settings":
        # Validating a ModelForm writes the submitted values onto the instance; the page header
        # must keep showing what is saved.
        study.refresh_from_db()
    if action not in (None, "settings", "pair", "build"):
        messages.error(request, f"Unknown action “{action}”.")

    return render(
        request,
        "annotate/study_design.html",
        {
            "study": study,
            "study_form": study_form,
            "stage_forms": stages,
            "pairing_form": pairing_form,
            "build_form": build_form,
            "overview": study_data_overview(study=study),
            "runs_url": _runs_url(study),
        },
    )


@require_http_methods(["GET", "POST"])
def study_items(request: HttpRequest, study_id: int, stage: int) -> HttpResponse:
    """A stage's items for the study's owners: what each asks about, how far it is, and a way to
    withdraw untouched items from the stage (or restore them)."""
    study = study_get_for_owner(user=request.user, study_id=study_id)
    if stage not in Stage.values:
        raise Http404("No such stage.")
    state = request.GET.get("state") or None
    if state not in (None, *ITEM_STATES):
        raise Http404("No such item state.")
    action_form = ItemsActionForm(request.POST or None, study=study, stage=stage)
    if request.method == "POST":
        if action_form.is_valid():
            withdraw = action_form.cleaned_data["action"] == "withdraw"
            ids = [item.pk for item in action_form.cleaned_data["items"]]
            try:
                changed = items_withdraw(study=study, item_ids=ids, withdrawn=withdraw)
            except ValidationError as error:
                messages.error(request, "Nothing changed: " + " ".join(error.messages))
            else:
                verb = "withdrawn" if withdraw else "restored"
                messages.success(request, f"{changed} item{'s' if changed != 1 else ''} {verb}.")
                return redirect(request.get_full_path())
        else:
            messages.error(request, " ".join(str(e) for errors in action_form.errors.values() for e in errors))
    page = Paginator(items_of_stage(study=study, stage=stage, state=state), ITEMS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "item": item,
            "state": (row_state := item_state(item)),
            "state_label": ITEM_STATES[row_state],
            "leased": item.slots_taken - item.done_count,
        }
        for item in page
    ]
    return render(
        request,
        "annotate/items.html",
        {
            "study": study,
            "stage": Stage(stage),
            "title": SCREEN_TITLES[stage],
            "states": ITEM_STATES,
            "state": state,
            "state_label": ITEM_STATES.get(state or ""),
            "page": page,
            "rows": rows,
            "progress": study_progress(study=study, stage=stage),
        },
    )


@require_http_methods(["GET", "POST"])
def item_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    """One item as its study's owners see it (nothing hidden: stage 3 names the personalized
    response), with the choice of what it shows while nobody has been assigned it."""
    item = item_get_for_owner(user=request.user, item_id=item_id)
    overview = item_overview(item=item)
    editable = not overview["assignments"]
    action = request.POST.get("action") if request.method == "POST" else None
    form = ItemChoiceForm(request.POST if action == "save" else None, item=item, overview=overview)
    try:
        if action == "save" and editable and form.is_valid():
            data = form.cleaned_data
            item_choose(
                study=item.study,
                item_id=item.pk,
                attribute_ids=data["attributes"],
                generic_response_id=data.get("generic_response"),
                personalized_response_id=data.get("personalized_response"),
            )
            messages.success(request, "Item saved.")
            return redirect("item-detail", item_id=item.pk)
        if action in ("withdraw", "restore") and editable:
            items_withdraw(study=item.study, item_ids=[item.pk], withdrawn=action == "withdraw")
            messages.success(request, "Item withdrawn from the stage." if action == "withdraw" else "Item restored.")
            return redirect("item-detail", item_id=item.pk)
    except ValidationError as error:
        messages.error(request, "Nothing changed: " + " ".join(error.messages))
    if action is not None and not editable:
        messages.error(request, "Nothing changed: this item already went to annotators.")
    return render(
        request,
        "annotate/item_detail.html",
        {
            "study": item.study,
            "item": item,
            "stage": Stage(item.stage),
            "title": SCREEN_TITLES[item.stage],
            "overview": overview,
            "form": form,
            "editable": editable,
        },
    )


def _screen_config(*, study: Study, stage: int, mode: str, assignment_id: int | None) -> dict:
    """Everything the annotation script needs to find its API; passed through json_script."""

    def per_assignment(name: str) -> str:
        return reverse(name, args=[URL_ID_PLACEHOLDER])

    return {
        "mode": mode,
        "stage": stage,
        "studyId": study.pk,
        "assignmentId": assignment_id,
        "readOnly": False,
        "idPlaceholder": str(URL_ID_PLACEHOLDER),
        "urls": {
            "next": reverse("api-assignment-next", args=[study.pk, stage]),
            "progress": reverse("api-stage-progress", args=[study.pk, stage]),
            "assignment": per_assignment("api-assignment"),
            "submit": per_assignment("api-assignment-submit"),
            "skip": per_assignment("api-assignment-skip"),
            "heartbeat": per_assignment("api-assignment-heartbeat"),
            "draft": per_assignment("api-assignment-draft"),
            "studyDetail": reverse("study-detail", args=[study.pk]),
            "myJudgments": reverse("my-judgments", args=[study.pk]),
            "edit": reverse("assignment-edit", args=[URL_ID_PLACEHOLDER]),
        },
    }


def _runs_url(study: Study) -> str:
    # The model-run pages are another area's; link by name when they are installed.
    try:
        return reverse("runs:list", args=[study.pk])
    except NoReverseMatch:
        return f"/studies/{study.pk}/runs/"
