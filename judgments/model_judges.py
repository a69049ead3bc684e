"""Models as raters: relevance (stage 2), correctness (stage 1) and preference (stage 3).

A model judgment is a Judgment with `model_run` set instead of an annotator, so the analysis
compares it with the human ones on the same items. The answer is decided by scoring the
allowed answers' log-probabilities (method "logprobs", the default: small models rarely write a
usable answer line) or by generating and parsing text with bounded repair (method "generate").
The raw output (scores or text) is kept on the judgment beside the parsed answer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from judgments.models import Judgment
from personalization.backends.base import Chat
from personalization.backends.registry import chat_backend, embedder, model_spec
from personalization.models import Attribute, Conversation, ModelRun, ModelRunItem, Prompt, Response, Stage
from personalization.pipeline.common import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_REPAIRS,
    choose_by_logprobs,
    conversation_lines,
    generate_parsed,
    generation_params,
    run_param_int,
)
from personalization.pipeline.parsing import CORRECTNESS_CHOICES, parse_choice, parse_rating
from personalization.pipeline.runner import ItemResult, RunOutcome, StepExecutor, json_raw, run_items_process
from personalization.prompting import load_template
from personalization.services import model_run_continue

Step = ModelRun.Step
YES_NO = {" YES": "yes", " NO": "no"}
# First words of the three labels: one short token each, so their log-probabilities compare
# fairly (whole labels of different lengths would favour the shortest).
CORRECTNESS_CUES = {" makes": "makes_sense", " maybe": "maybe", " doesnt": "doesnt_make_sense"}
RATINGS = {f" {n}": str(n) for n in range(1, 6)}
DEFAULT_EMBEDDING_THRESHOLD = 0.3
# How log-prob decisions correct a model's answer bias (param "calibrate"): against the scores of
# a content-free input, against the mean of the batch, or not at all.
CALIBRATIONS = ("content_free", "batch", "none")
DEFAULT_CALIBRATION = "content_free"
MIN_BATCH_FOR_CALIBRATION = 4


def presentation_side(*, run: ModelRun, input_key: str) -> str:
    """The side ("A" or "B") the personalized response is shown on, as random for the model as
    for humans, and reproducible from the run seed."""
    return random.Random(f"{run.seed}:{input_key}").choice("AB")  # noqa: S311 (not security)


def rating_to_personalized(*, rating_b_vs_a: int, personalized_side: str) -> str:
    """A 1-5 rating of B against A, restated as personalized against generic (5 = personalized much better)."""
    return str(rating_b_vs_a if personalized_side == "B" else 6 - rating_b_vs_a)


def _finite(scores: dict[str, float]) -> dict[str, float | None]:
    return {key: (value if math.isfinite(value) else None) for key, value in scores.items()}


class _ChatJudge:
    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.method = run.params.get("method", "logprobs")
        self.backend = chat_backend(run.model_name)
        self.params = generation_params(run, model_spec(run.model_name).generation_params(max_new_tokens=16))
        self.max_repairs = run_param_int(run, "max_repairs", DEFAULT_MAX_REPAIRS)
        self.calibration = run.params.get("calibrate", DEFAULT_CALIBRATION)
        self._baseline: dict[str, float] | None = None

    def baseline(self, content_free: Chat, *, cue: str, choices: dict[str, str]) -> dict[str, float] | None:
        """The choices' scores for a content-free input ("N/A" in every field), computed once per run
        execution: contextual calibration (Zhao et al., 2021) against a small model's answer bias."""
        if self._baseline is None:
            cued = [*content_free, {"role": "assistant", "content": cue}]
            [scores] = self.backend.choice_logprobs([cued], list(choices))
            self._baseline = {choice: value for choice, value in scores.items() if math.isfinite(value)}
        return self._baseline

    def decide(
        self,
        chats: list,
        *,
        cue: str,
        choices: dict[str, str],
        parse: Callable[[str], str],
        expected: str,
        content_free: Chat,
    ) -> list[tuple[str, str, str, int, int]]:
        """(answer, raw_output, error, attempts, tokens) per chat."""
        if self.method == "logprobs":
            if not chats:
                return []
            outcomes = choose_by_logprobs(self.backend, chats, choices, cue=cue)
            scored = [outcome[1] for outcome in outcomes if not isinstance(outcome, str)]
            labels = {choice.strip(): answer for choice, answer in choices.items()}
            baseline: dict[str, float] | None = None
            if self.calibration == "batch" and len(scored) >= MIN_BATCH_FOR_CALIBRATION:
                # Batch calibration (Zhou et al., 2024): the bias is the mean score of each choice
                # over the batch, so an item's answer is the choice it raises most above average.
                baseline = {
                    label: sum(s[label] for s in scored) / len(scored)
                    for label in labels
                    if all(math.isfinite(s[label]) for s in scored)
                }
            elif self.calibration in ("content_free", "batch"):
                free = self.baseline(content_free, cue=cue, choices=choices)
                baseline = {choice.strip(): value for choice, value in (free or {}).items()}
            decided: list[tuple[str, str, str, int, int]] = []
            for outcome in outcomes:
                if isinstance(outcome, str):
                    decided.append(("", "", outcome, 1, 0))
                    continue
                answer, scores = outcome
                raw: dict[str, object] = {"answer": answer, "logprobs": _finite(scores)}
                if baseline is not None:
                    offset = baseline
                    best = max(labels, key=lambda label: scores.get(label, -math.inf) - offset.get(label, 0.0))
                    answer = labels[best]
                    raw.update(answer=answer, baseline=baseline, calibration=self.calibration)
                decided.append((answer, json_raw(raw), "", 1, 0))
            return decided
        generated = generate_parsed(
            backend=self.backend,
            chats=chats,
            params=self.params,
            parse=parse,
            expected=expected,
            max_repairs=self.max_repairs,
        )
        return [(o.value or "", o.raw_output, o.error, o.attempts, o.tokens) for o in generated]


class RelevanceExecutor:
    """Stage 2 as a model: would the attribute change the response to the prompt?"""

    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.method = run.params.get("method", "logprobs")
        if self.method == "embedding":
            self.embedder = embedder(run.model_name)
            self.threshold = float(run.params.get("embedding_threshold", DEFAULT_EMBEDDING_THRESHOLD))
        else:
            self.judge = _ChatJudge(run)
            self.template = load_template("relevance.v1")

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        keys = {item.pk: item.input_key.split(":") for item in items}
        prompts = Prompt.objects.in_bulk({int(k[1]) for k in keys.values()})
        attributes = Attribute.objects.in_bulk({int(k[3]) for k in keys.values()})
        results, work = [], []
        for item in items:
            prompt, attribute = prompts.get(int(keys[item.pk][1])), attributes.get(int(keys[item.pk][3]))
            if prompt is None or attribute is None:
                results.append(ItemResult(item_id=item.pk, raw_output="", error="prompt or attribute no longer exists"))
            else:
                work.append((item, prompt, attribute))
        if self.method == "embedding":
            decided = self._by_embedding(work)
        else:
            chats = [self.template.render(attribute=a.text, prompt=p.text) for _, p, a in work]
            decided = self.judge.decide(
                chats,
                cue="Answer:",
                choices=YES_NO,
                parse=lambda text: parse_choice(text, {"yes": "yes", "no": "no"}),
                expected='a JSON object {"answer": "yes" or "no"}',
                content_free=self.template.render(attribute="N/A", prompt="N/A"),
            )
        for (item, prompt, attribute), (answer, raw, error, attempts, tokens) in zip(work, decided, strict=True):
            result = ItemResult(item_id=item.pk, raw_output=raw, error=error, attempts=attempts, tokens=tokens)
            if not error:
                result.write = _judgment_writer(
                    run=self.run, stage=Stage.RELEVANCE, attribute=attribute, answer=answer, raw=raw, prompt=prompt
                )
            results.append(result)
        return results

    def _by_embedding(self, work: list) -> list[tuple[str, str, str, int, int]]:
        """The embedding baseline: YES when prompt and attribute are close enough in meaning."""
        if not work:
            return []
        vectors = self.embedder.embed([p.text for _, p, _ in work] + [a.text for _, _, a in work])
        half = len(work)
        decided = []
        for index in range(half):
            left, right = vectors[index], vectors[half + index]
            cosine = sum(x * y for x, y in zip(left, right, strict=True))
            answer = "yes" if cosine >= self.threshold else "no"
            raw = json_raw({"answer": answer, "cosine": round(cosine, 6), "threshold": self.threshold})
            decided.append((answer, raw, "", 1, 0))
        return decided


class CorrectnessExecutor:
    """Stage 1 as a model: does the attribute make sense given the subject's conversations?"""

    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.judge = _ChatJudge(run)
        self.template = load_template("judge_correctness.v1")
        self.max_chars = run_param_int(run, "max_chars", DEFAULT_MAX_CHARS)

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        keys = {item.pk: item.input_key.split(":") for item in items}
        attributes = Attribute.objects.in_bulk({int(k[3]) for k in keys.values()})
        subject_ids = {int(k[1]) for k in keys.values()}
        history: dict[int, str] = {}
        conversations = Conversation.objects.filter(subject_id__in=subject_ids).prefetch_related("turns")
        by_subject: dict[int, list[Conversation]] = {}
        for conversation in conversations.order_by("subject_id", "timestamp", "id"):
            by_subject.setdefault(conversation.subject_id, []).append(conversation)
        for subject_id in subject_ids:
            history[subject_id] = conversation_lines(by_subject.get(subject_id, []), max_chars=self.max_chars)
        results, work = [], []
        for item in items:
            attribute = attributes.get(int(keys[item.pk][3]))
            if attribute is None:
                results.append(ItemResult(item_id=item.pk, raw_output="", error="attribute no longer exists"))
            else:
                work.append((item, attribute))
        chats = [self.template.render(conversation=history[a.subject_id], attribute=a.text) for _, a in work]
        decided = self.judge.decide(
            chats,
            cue="Label:",
            choices=CORRECTNESS_CUES,
            parse=lambda text: parse_choice(text, CORRECTNESS_CHOICES),
            expected='a JSON object {"answer": "makes_sense" or "maybe" or "doesnt_make_sense"}',
            content_free=self.template.render(conversation="N/A", attribute="N/A"),
        )
        for (item, attribute), (answer, raw, error, attempts, tokens) in zip(work, decided, strict=True):
            result = ItemResult(item_id=item.pk, raw_output=raw, error=error, attempts=attempts, tokens=tokens)
            if not error:
                result.write = _judgment_writer(
                    run=self.run,
                    stage=Stage.CORRECTNESS,
                    attribute=attribute,
                    answer=answer,
                    raw=raw,
                    subject_id=attribute.subject_id,
                )
            results.append(result)
        return results


class PreferenceExecutor:
    """Stage 3 as a model: the same blind A/B presentation humans get, one attribute at a time."""

    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.judge = _ChatJudge(run)
        self.template = load_template("judge_preference.v1")

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        # pair:<pair>:attr:<attr>:generic:<response>:personalized:<response>
        keys = {item.pk: item.input_key.split(":") for item in items}
        attributes = Attribute.objects.in_bulk({int(k[3]) for k in keys.values()})
        responses = Response.objects.select_related("pair__prompt").in_bulk(
            {int(k[5]) for k in keys.values()} | {int(k[7]) for k in keys.values()}
        )
        results, work = [], []
        for item in items:
            parts = keys[item.pk]
            attribute = attributes.get(int(parts[3]))
            generic, personalized = responses.get(int(parts[5])), responses.get(int(parts[7]))
            if attribute is None or generic is None or personalized is None:
                results.append(
                    ItemResult(item_id=item.pk, raw_output="", error="attribute or response no longer exists")
                )
                continue
            side = presentation_side(run=self.run, input_key=item.input_key)
            work.append((item, attribute, generic, personalized, side))
        chats = []
        for _, attribute, generic, personalized, side in work:
            a, b = (generic, personalized) if side == "B" else (personalized, generic)
            chats.append(
                self.template.render(
                    attribute=attribute.text, prompt=generic.pair.prompt.text, response_a=a.text, response_b=b.text
                )
            )
        decided = self.judge.decide(
            chats,
            cue="Answer:",
            choices=RATINGS,
            parse=parse_rating,
            expected='a JSON object {"answer": 1 to 5}',
            content_free=self.template.render(attribute="N/A", prompt="N/A", response_a="N/A", response_b="N/A"),
        )
        for (item, attribute, generic, personalized, side), (rating, raw, error, attempts, tokens) in zip(
            work, decided, strict=True
        ):
            result = ItemResult(item_id=item.pk, raw_output=raw, error=error, attempts=attempts, tokens=tokens)
            if not error:
                answer = rating_to_personalized(rating_b_vs_a=int(rating), personalized_side=side)
                shown = json_raw({"rating_b_vs_a": int(rating), "personalized_side": side, "model_output": raw})
                result.raw_output = shown
                result.write = _judgment_writer(
                    run=self.run,
                    stage=Stage.PREFERENCE,
                    attribute=attribute,
                    answer=answer,
                    raw=shown,
                    pair_id=generic.pair_id,
                    generic_response=generic,
                    personalized_response=personalized,
                    personalized_side=side,
                )
            results.append(result)
        return results


def _judgment_writer(
    *, run: ModelRun, stage: int, attribute: Attribute, answer: str, raw: str, **item: object
) -> Callable[[], None]:
    def write() -> None:
        Judgment.objects.create(
            study_id=run.study_id,
            stage=stage,
            model_run=run,
            attribute=attribute,
            answer=answer,
            raw_output=raw,
            **item,
        )

    return write


def model_judge_executor(run: ModelRun) -> StepExecutor:
    executors: dict[str, Callable[[ModelRun], StepExecutor]] = {
        Step.RELEVANCE: RelevanceExecutor,
        Step.JUDGE_CORRECTNESS: CorrectnessExecutor,
        Step.JUDGE_PREFERENCE: PreferenceExecutor,
    }
    if run.step not in executors:
        raise ValueError(f"step {run.step!r} is not a model-judge step")
    return executors[run.step](run)


def model_judge_run_execute(*, run_id: int, time_budget_seconds: float | None = None) -> RunOutcome:
    """Does the missing work of a relevance/judge run (safe to call twice; see the pipeline runner)."""
    return run_items_process(
        run_id=run_id,
        executor_factory=model_judge_executor,
        time_budget_seconds=time_budget_seconds,
        on_finished=model_run_continue,
    )
