"""Input and output shapes of the annotation API. Services set status, annotator, study and
timestamps; nothing of the kind is read from a request body."""

from __future__ import annotations

from rest_framework import serializers

from annotate.services import MAX_ACTIVE_MS, MAX_TEXT_CHARS


class SubmitInputSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.CharField(max_length=20),
        help_text='attribute id -> answer: stage 1 "makes_sense" | "maybe" | "doesnt_make_sense"; stage 2 "yes" | '
        '"no"; stage 3 "1".."5" where 5 = the right-hand response B is much better than A, as shown.',
    )
    attribute_notes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=MAX_TEXT_CHARS), required=False, default=dict
    )
    note = serializers.CharField(allow_blank=True, required=False, default="", max_length=MAX_TEXT_CHARS)
    missing_attributes = serializers.CharField(allow_blank=True, required=False, default="", max_length=MAX_TEXT_CHARS)
    flag = serializers.BooleanField(required=False, default=False)
    active_ms = serializers.IntegerField(min_value=0, max_value=MAX_ACTIVE_MS, required=False, default=0)


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=MAX_TEXT_CHARS)


class DraftInputSerializer(serializers.Serializer):
    draft = serializers.DictField(help_text="The page's unsaved form state, returned as `draft` in the payload.")


class StudyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class GuidelinesSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    text = serializers.CharField()


class MineProgressSerializer(serializers.Serializer):
    mine_done = serializers.IntegerField()
    mine_available = serializers.IntegerField(help_text="Counted up to 1000")
    mine_available_capped = serializers.BooleanField(help_text="True when there are at least 1000")


class ProgressSerializer(MineProgressSerializer):
    items_total = serializers.IntegerField(help_text="Items of the stage, withdrawn ones left out")
    items_done = serializers.IntegerField()
    items_in_progress = serializers.IntegerField()
    items_waiting = serializers.IntegerField()
    items_withdrawn = serializers.IntegerField(help_text="Taken out of the stage by a researcher; not in the total")


class TurnSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(allow_blank=True)
    timestamp = serializers.CharField(allow_null=True)
    turns = TurnSerializer(many=True)


class AttributeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Stage 1 only")
    confidence = serializers.FloatField(required=False, allow_null=True, help_text="Stage 1 only")
    evidence_turn_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Stage 1 only"
    )


class PromptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class ResponsesSerializer(serializers.Serializer):
    A = serializers.CharField(allow_blank=True)
    B = serializers.CharField(allow_blank=True)


class AssignmentPayloadSerializer(serializers.Serializer):
    """What a screen needs to show an assignment. Text is untrusted: clients must escape it."""

    assignment_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    stage = serializers.IntegerField()
    status = serializers.CharField()
    first_person = serializers.BooleanField()
    study = StudyRefSerializer()
    guidelines = GuidelinesSerializer(allow_null=True)
    draft = serializers.DictField()
    active_ms = serializers.IntegerField()
    lease_expires_at = serializers.CharField()
    submitted_at = serializers.CharField(allow_null=True)
    existing = serializers.DictField(
        child=serializers.CharField(), help_text="attribute id -> your stored answer, in the terms shown"
    )
    attribute_notes = serializers.DictField(child=serializers.CharField())
    feedback = serializers.DictField(help_text="Your stored note, missing_attributes and flag for the item")
    progress = MineProgressSerializer(help_text="Your own progress; the study's comes from the stage progress endpoint")
    conversations = ConversationSerializer(many=True, required=False, help_text="Stage 1 only")
    attributes = AttributeSerializer(many=True)
    prompt = PromptSerializer(required=False, help_text="Stages 2 and 3")
    responses = ResponsesSerializer(required=False, help_text="Stage 3 only; which one is personalized is hidden")


class SubmitOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    next = AssignmentPayloadSerializer(allow_null=True)


class SkipOutputSerializer(serializers.Serializer):
    next = AssignmentPayloadSerializer(allow_null=True)


class HeartbeatOutputSerializer(serializers.Serializer):
    lease_expires_at = serializers.DateTimeField()


class MyJudgmentSerializer(serializers.Serializer):
    assignment_id = serializers.IntegerField(source="pk")
    item_id = serializers.IntegerField()
    stage = serializers.IntegerField()
    item_label = serializers.CharField(source="item.target_label")
    first_person = serializers.BooleanField()
    submitted_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
