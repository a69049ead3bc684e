"""Step "generate": a generic response and personalized ones for every subject-prompt pair."""

from __future__ import annotations

from collections.abc import Callable

from personalization.backends.registry import chat_backend, model_spec
from personalization.models import Attribute, ModelRun, ModelRunItem, Response, SubjectPrompt
from personalization.pipeline.common import generate_isolating, generation_params
from personalization.pipeline.plan import conditioning_attribute_ids
from personalization.pipeline.runner import ItemResult, db_text
from personalization.prompting import load_template


class GenerateExecutor:
    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.backend = chat_backend(run.model_name)
        self.params = generation_params(run, model_spec(run.model_name).generation_params())
        self.generic = load_template("generate_generic.v1")
        self.personalized = load_template("generate_personalized.v1")
        self.conditioned = conditioning_attribute_ids(study=run.study, params=run.params)

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        keys = {item.pk: item.input_key.split(":") for item in items}
        pairs = SubjectPrompt.objects.select_related("prompt").in_bulk({int(parts[1]) for parts in keys.values()})
        results: list[ItemResult] = []
        work: list[tuple[ModelRunItem, SubjectPrompt, str, list[Attribute]]] = []
        wanted_ids: dict[int, list[int]] = {}
        for item in items:
            _, pair_id, _, mode = keys[item.pk]
            pair = pairs.get(int(pair_id))
            if pair is None:
                results.append(ItemResult(item_id=item.pk, raw_output="", error=f"pair {pair_id} no longer exists"))
                continue
            wanted_ids[item.pk] = (
                [] if mode == Response.Mode.GENERIC else self.conditioned(pair.subject_id, pair.prompt_id, mode)
            )
            work.append((item, pair, mode, []))
        attributes = Attribute.objects.in_bulk({pk for ids in wanted_ids.values() for pk in ids})
        chats = []
        for item, pair, mode, conditioned in work:
            conditioned.extend(attributes[pk] for pk in wanted_ids[item.pk] if pk in attributes)
            if mode == Response.Mode.GENERIC:
                chats.append(self.generic.render(prompt=pair.prompt.text))
            else:
                facts = "\n".join(f"- {a.text}" for a in conditioned)
                chats.append(self.personalized.render(attributes=facts, prompt=pair.prompt.text))
        # The whole batch in one backend call: this is where the throughput comes from.
        generations = generate_isolating(self.backend, chats, self.params)
        for (item, pair, mode, conditioned), generation in zip(work, generations, strict=True):
            if isinstance(generation, str):
                results.append(ItemResult(item_id=item.pk, raw_output="", error=generation))
                continue
            text = db_text(generation.text.strip())
            result = ItemResult(
                item_id=item.pk, raw_output=generation.text, tokens=generation.completion_tokens, attempts=1
            )
            if not text:
                # An empty answer is recorded as a failure, never replaced by something made up.
                result.error = "the model produced no text"
            elif mode != Response.Mode.GENERIC and not conditioned:
                result.error = "no attribute left to condition on (deleted since the run was planned)"
            else:
                template = self.generic if mode == Response.Mode.GENERIC else self.personalized
                metadata = {
                    "template": template.name,
                    "template_sha256": template.sha256,
                    "prompt_tokens": generation.prompt_tokens,
                    "completion_tokens": generation.completion_tokens,
                }
                result.write = self._writer(pair, mode, text, conditioned, metadata)
            results.append(result)
        return results

    def _writer(
        self, pair: SubjectPrompt, mode: str, text: str, conditioned: list[Attribute], metadata: dict
    ) -> Callable[[], None]:
        run = self.run

        def write() -> None:
            response = Response.objects.create(pair=pair, mode=mode, text=text, model_run=run, metadata=metadata)
            if conditioned:
                response.conditioned_on.set(conditioned)

        return write
