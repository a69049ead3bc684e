"""Step "extract": what each conversation reveals about its user, as original attributes."""

from __future__ import annotations

from collections.abc import Callable

from personalization.backends.registry import chat_backend, model_spec
from personalization.models import Attribute, Conversation, ModelRun, ModelRunItem, Turn
from personalization.pipeline.common import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_REPAIRS,
    conversation_lines,
    generate_parsed,
    generation_params,
    run_param_int,
)
from personalization.pipeline.parsing import ExtractedAttribute, parse_attribute_list
from personalization.pipeline.runner import ItemResult, db_text
from personalization.prompting import load_template

EXPECTED = 'a JSON list of {"attribute": str, "reason": str, "confidence": 0..1, "evidence_turns": [int]}'


class ExtractExecutor:
    def __init__(self, run: ModelRun) -> None:
        self.run = run
        self.backend = chat_backend(run.model_name)
        self.params = generation_params(run, model_spec(run.model_name).generation_params())
        self.template = load_template("extract_attributes.v2")
        self.max_chars = run_param_int(run, "max_chars", DEFAULT_MAX_CHARS)
        self.max_repairs = run_param_int(run, "max_repairs", DEFAULT_MAX_REPAIRS)

    def process(self, items: list[ModelRunItem]) -> list[ItemResult]:
        ids = {item.pk: int(item.input_key.split(":")[1]) for item in items}
        conversations = Conversation.objects.filter(pk__in=ids.values()).prefetch_related("turns").in_bulk()
        missing = [item for item in items if ids[item.pk] not in conversations]
        present = [item for item in items if ids[item.pk] in conversations]
        results = [
            ItemResult(item_id=item.pk, raw_output="", error=f"conversation {ids[item.pk]} no longer exists")
            for item in missing
        ]
        chats = [
            self.template.render(
                conversation=conversation_lines([conversations[ids[item.pk]]], max_chars=self.max_chars, user_only=True)
            )
            for item in present
        ]
        outcomes = generate_parsed(
            backend=self.backend,
            chats=chats,
            params=self.params,
            parse=parse_attribute_list,
            expected=EXPECTED,
            max_repairs=self.max_repairs,
        )
        for item, outcome in zip(present, outcomes, strict=True):
            result = ItemResult(
                item_id=item.pk,
                raw_output=outcome.raw_output,
                error=outcome.error,
                attempts=outcome.attempts,
                tokens=outcome.tokens,
            )
            if not outcome.error:
                result.write = self._writer(conversations[ids[item.pk]], outcome.value)
            results.append(result)
        return results

    def _writer(self, conversation: Conversation, found: list[ExtractedAttribute]) -> Callable[[], None]:
        run = self.run

        def write() -> None:
            turns = {turn.index: turn for turn in Turn.objects.filter(conversation=conversation)}
            for entry in found:
                # The same sentence may come out of two conversations of one subject (or twice in one
                # reply): it is one attribute of the run, with the evidence of both.
                attribute, created = Attribute.objects.get_or_create(
                    subject_id=conversation.subject_id,
                    level=Attribute.Level.ORIGINAL,
                    text=db_text(entry.attribute),
                    model_run=run,
                    defaults={
                        "origin": Attribute.Origin.MODEL,
                        "reason": db_text(entry.reason),
                        "confidence": entry.confidence,
                        "metadata": {"conversation_ids": [], "unresolved_evidence_turns": []},
                    },
                )
                metadata = dict(attribute.metadata)
                metadata.setdefault("conversation_ids", [])
                metadata.setdefault("unresolved_evidence_turns", [])
                if conversation.pk not in metadata["conversation_ids"]:
                    metadata["conversation_ids"].append(conversation.pk)
                resolved = [turns[index] for index in entry.evidence_turns if index in turns]
                # Turn numbers the model made up are kept visible, not silently dropped.
                metadata["unresolved_evidence_turns"] += [
                    {"conversation_id": conversation.pk, "turn_index": index}
                    for index in entry.evidence_turns
                    if index not in turns
                ]
                attribute.metadata = metadata
                attribute.save(update_fields=["metadata"])
                if resolved:
                    attribute.evidence_turns.add(*resolved)

        return write
