"""What a run will do: its validated parameters and one input key per unit of work.

Keys are stable text (`conv:12`, `pair:3:mode:generic`...) so the (run, input_key) unique
constraint makes planning twice, or recording an item twice, impossible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from personalization import selectors
from personalization.models import Conversation, ModelRun, Response, Study, Subject

Step = ModelRun.Step
PERSONALIZED_MODES = (
    Response.Mode.ALL_ATTRIBUTES,
    Response.Mode.SELECTED_ATTRIBUTES,
    Response.Mode.HUMAN_RELEVANT_ATTRIBUTES,
)
DEFAULT_MODES = [Response.Mode.GENERIC.value, Response.Mode.ALL_ATTRIBUTES.value]

_COMMON: dict[str, type] = {
    "batch_size": int,
    "max_new_tokens": int,
    "temperature": float,
    "top_p": float,
    "max_repairs": int,
    "max_chars": int,
    "limit": int,
    # Steps to start, in order, when this run finishes (see services.model_run_continue).
    "then": list,
}
_BY_STEP: dict[str, dict[str, type]] = {
    Step.EXTRACT: {},
    Step.MERGE: {"threshold": float, "extract_run_id": int},
    Step.RELEVANCE: {"method": str, "embedding_threshold": float, "merge_run_id": int, "calibrate": str},
    Step.GENERATE: {"modes": list, "relevance_run_id": int, "human_relevant": dict, "merge_run_id": int},
    Step.JUDGE_CORRECTNESS: {"method": str, "merge_run_id": int, "calibrate": str},
    Step.JUDGE_PREFERENCE: {"method": str, "generate_run_id": int, "calibrate": str},
}
_METHODS: dict[str, tuple[str, ...]] = {
    Step.RELEVANCE: ("logprobs", "embedding"),
    Step.JUDGE_CORRECTNESS: ("logprobs", "generate"),
    Step.JUDGE_PREFERENCE: ("logprobs", "generate"),
}
# How model judges correct log-prob answer bias (see judgments.model_judges).
CALIBRATIONS = ("content_free", "batch", "none")
TEMPLATES: dict[str, tuple[str, ...]] = {
    Step.EXTRACT: ("extract_attributes.v2", "repair_json.v1"),
    Step.MERGE: (),
    Step.RELEVANCE: ("relevance.v1",),
    Step.GENERATE: ("generate_generic.v1", "generate_personalized.v1"),
    Step.JUDGE_CORRECTNESS: ("judge_correctness.v1",),
    Step.JUDGE_PREFERENCE: ("judge_preference.v1",),
}


@dataclass(frozen=True)
class Plan:
    params: dict
    keys: list[str]


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError({f"params.{field}": message})


def _coerce(field: str, value: object, kind: type) -> object:
    """Values from a form or the command line arrive as text; convert them or say which field is wrong."""
    if kind is int and isinstance(value, str | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            raise _fail(field, f"expected an integer, got {value!r}") from None
        if number != int(number):
            raise _fail(field, f"expected an integer, got {value!r}")
        return int(number)
    if kind is float and isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise _fail(field, f"expected a number, got {value!r}") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise _fail(field, f"expected true or false, got {value!r}")
    if kind is list and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _fail(field, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def params_validate(*, study: Study, step: str, params: dict | None) -> dict:
    """Checks parameter names, types and ranges and fills in the defaults the run will record."""
    if step not in Step.values:
        raise ValidationError({"step": f"unknown step {step!r}; known: {', '.join(Step.values)}"})
    allowed = {**_COMMON, **_BY_STEP[step]}
    clean: dict = {}
    for field, value in (params or {}).items():
        if field not in allowed:
            raise _fail(field, f"unknown parameter for step {step}; known: {', '.join(sorted(allowed))}")
        clean[field] = _coerce(field, value, allowed[field])
    for field in ("batch_size", "max_new_tokens", "max_chars", "limit"):
        if field in clean and clean[field] < 1:
            raise _fail(field, "must be at least 1")
    if "max_repairs" in clean and not 0 <= clean["max_repairs"] <= 5:
        raise _fail("max_repairs", "must be between 0 and 5")
    for field in ("threshold", "embedding_threshold", "top_p"):
        if field in clean and not 0.0 <= clean[field] <= 1.0:
            raise _fail(field, "must be between 0 and 1")
    if step in _METHODS:
        clean.setdefault("method", _METHODS[step][0])
        if clean["method"] not in _METHODS[step]:
            raise _fail("method", f"must be one of {', '.join(_METHODS[step])}")
    if "calibrate" in clean and clean["calibrate"] not in CALIBRATIONS:
        raise _fail("calibrate", f"must be one of {', '.join(CALIBRATIONS)}")
    _resolve_sources(study=study, step=step, params=clean)
    return clean


def _run_of(study: Study, field: str, run_id: int, step: str) -> ModelRun:
    run = ModelRun.objects.filter(pk=run_id, study=study, step=step).first()
    if run is None:
        raise _fail(field, f"no {step} run #{run_id} in this study")
    return run


def _resolve_sources(*, study: Study, step: str, params: dict) -> None:
    """Pins the runs this one reads from (latest finished ones by default), so the run records them."""
    if step == Step.MERGE:
        if "extract_run_id" in params:
            _run_of(study, "extract_run_id", params["extract_run_id"], Step.EXTRACT)
        else:
            latest = selectors.model_run_latest(study=study, step=Step.EXTRACT)
            if latest is None:
                raise _fail("extract_run_id", "merging needs a finished extract run in this study; run extract first")
            params["extract_run_id"] = latest.pk
    if step in (Step.RELEVANCE, Step.GENERATE, Step.JUDGE_CORRECTNESS):
        if params.get("merge_run_id") is not None:
            _run_of(study, "merge_run_id", params["merge_run_id"], Step.MERGE)
        else:
            latest = selectors.model_run_latest(study=study, step=Step.MERGE)
            params["merge_run_id"] = latest.pk if latest else None
    if step == Step.GENERATE:
        modes = params.setdefault("modes", list(DEFAULT_MODES))
        unknown = sorted(set(modes) - set(Response.Mode.values))
        if unknown or not modes:
            raise _fail("modes", f"unknown mode(s) {unknown}; known: {', '.join(Response.Mode.values)}")
        if Response.Mode.SELECTED_ATTRIBUTES in modes:
            if "relevance_run_id" in params:
                _run_of(study, "relevance_run_id", params["relevance_run_id"], Step.RELEVANCE)
            else:
                latest = selectors.model_run_latest(study=study, step=Step.RELEVANCE)
                if latest is None:
                    raise _fail("relevance_run_id", "mode selected_attributes needs a finished relevance run")
                params["relevance_run_id"] = latest.pk
        if Response.Mode.HUMAN_RELEVANT_ATTRIBUTES in modes:
            chosen = params.get("human_relevant")
            if not isinstance(chosen, dict):
                raise _fail(
                    "human_relevant", "mode human_relevant_attributes needs the humans' choices (prompt id -> ids)"
                )
            try:
                params["human_relevant"] = {str(int(k)): sorted(int(a) for a in v) for k, v in chosen.items()}
            except (TypeError, ValueError):
                raise _fail("human_relevant", "expected {prompt id: [attribute ids]}") from None
    if step == Step.JUDGE_PREFERENCE:
        if "generate_run_id" in params:
            _run_of(study, "generate_run_id", params["generate_run_id"], Step.GENERATE)
        else:
            latest = selectors.model_run_latest(study=study, step=Step.GENERATE)
            params["generate_run_id"] = latest.pk if latest else None


def plan_keys(*, study: Study, step: str, params: dict) -> list[str]:
    """One key per unit of work, in a stable order, capped by params["limit"]."""
    keys = _KEYS[step](study, params)
    limit = params.get("limit")
    return keys[:limit] if limit else keys


def _extract_keys(study: Study, params: dict) -> list[str]:
    ids = Conversation.objects.filter(subject__study=study).order_by("subject_id", "id").values_list("id", flat=True)
    return [f"conv:{pk}" for pk in ids]


def _merge_keys(study: Study, params: dict) -> list[str]:
    return [f"subject:{pk}" for pk in Subject.objects.filter(study=study).order_by("id").values_list("id", flat=True)]


def _relevance_keys(study: Study, params: dict) -> list[str]:
    by_subject = selectors.merged_attributes_by_subject(study=study, merge_run_id=params.get("merge_run_id"))
    keys: list[str] = []
    seen: set[tuple[int, int]] = set()
    for pair in selectors.pairs_of_study(study=study).order_by("prompt_id", "subject_id"):
        for attribute in by_subject.get(pair.subject_id, []):
            if (pair.prompt_id, attribute.pk) not in seen:
                seen.add((pair.prompt_id, attribute.pk))
                keys.append(f"prompt:{pair.prompt_id}:attr:{attribute.pk}")
    return keys


def _generate_keys(study: Study, params: dict) -> list[str]:
    """(pair, mode) for every pair, except personalized modes with no attribute to condition on."""
    conditioned = conditioning_attribute_ids(study=study, params=params)
    keys: list[str] = []
    for pair in selectors.pairs_of_study(study=study):
        for mode in params["modes"]:
            if mode == Response.Mode.GENERIC or conditioned(pair.subject_id, pair.prompt_id, mode):
                keys.append(f"pair:{pair.pk}:mode:{mode}")
    return keys


def conditioning_attribute_ids(*, study: Study, params: dict) -> Callable[[int, int, str], list[int]]:
    """A function (subject id, prompt id, mode) -> the attribute ids a personalized response is conditioned on."""
    by_subject = {
        subject_id: [a.pk for a in attributes]
        for subject_id, attributes in selectors.merged_attributes_by_subject(
            study=study, merge_run_id=params.get("merge_run_id")
        ).items()
    }
    selected: dict[int, set[int]] = {}
    if params.get("relevance_run_id"):
        relevance_run = ModelRun.objects.get(pk=params["relevance_run_id"])
        selected = selectors.relevance_run_selection(run=relevance_run)
    human = {int(k): set(v) for k, v in (params.get("human_relevant") or {}).items()}

    def conditioned(subject_id: int, prompt_id: int, mode: str) -> list[int]:
        own = by_subject.get(subject_id, [])
        if mode == Response.Mode.ALL_ATTRIBUTES:
            return own
        if mode == Response.Mode.SELECTED_ATTRIBUTES:
            return [pk for pk in own if pk in selected.get(prompt_id, set())]
        if mode == Response.Mode.HUMAN_RELEVANT_ATTRIBUTES:
            return [pk for pk in own if pk in human.get(prompt_id, set())]
        return []

    return conditioned


def _judge_correctness_keys(study: Study, params: dict) -> list[str]:
    attributes = selectors.merged_attributes(study=study, merge_run_id=params.get("merge_run_id"))
    return [f"subject:{a.subject_id}:attr:{a.pk}" for a in attributes]


def preference_candidates(*, study: Study, generate_run_id: int | None) -> list[tuple[int, Response, Response]]:
    """(pair id, generic, personalized) for every pair that has both in the chosen generate run
    (or, without one, among imported responses); all_attributes preferred, then selected, then human."""
    responses = Response.objects.filter(pair__subject__study=study, model_run_id=generate_run_id).order_by("id")
    by_pair: dict[int, dict[str, Response]] = {}
    for response in responses:
        by_pair.setdefault(response.pair_id, {}).setdefault(response.mode, response)
    found = []
    for pair_id in sorted(by_pair):
        modes = by_pair[pair_id]
        personalized = next((modes[m] for m in PERSONALIZED_MODES if m in modes), None)
        if Response.Mode.GENERIC in modes and personalized is not None:
            found.append((pair_id, modes[Response.Mode.GENERIC], personalized))
    return found


def _judge_preference_keys(study: Study, params: dict) -> list[str]:
    keys: list[str] = []
    for pair_id, generic, personalized in preference_candidates(
        study=study, generate_run_id=params.get("generate_run_id")
    ):
        for attribute_id in personalized.conditioned_on.order_by("id").values_list("id", flat=True):
            keys.append(f"pair:{pair_id}:attr:{attribute_id}:generic:{generic.pk}:personalized:{personalized.pk}")
    return keys


_KEYS: dict[str, Callable[[Study, dict], list[str]]] = {
    Step.EXTRACT: _extract_keys,
    Step.MERGE: _merge_keys,
    Step.RELEVANCE: _relevance_keys,
    Step.GENERATE: _generate_keys,
    Step.JUDGE_CORRECTNESS: _judge_correctness_keys,
    Step.JUDGE_PREFERENCE: _judge_preference_keys,
}
