"""Builders for importer input lines and a row counter for "nothing was stored" checks."""

from __future__ import annotations

from personalization.models import Attribute, Conversation, Prompt, Subject, Turn


def wildchat_line(conv_hash: str, ip: str, turns: list[tuple[str, str]], **extra: object) -> dict:
    return {
        "conversation_hash": conv_hash,
        "model": "gpt-4-0314",
        "timestamp": "2023-04-09T00:02:53+00:00",
        "hashed_ip": ip,
        "conversation": [{"role": role, "content": content, "language": "English"} for role, content in turns],
        "language": "English",
        "country": "Portugal",
        **extra,
    }


def openai_line(user: str, turns: list[tuple[str, str]], **extra: object) -> dict:
    return {"user": user, "messages": [{"role": role, "content": content} for role, content in turns], **extra}


def counts() -> dict[str, int]:
    """Row counts of everything an import may write: equal before and after a rejected import."""
    return {
        "subjects": Subject.objects.count(),
        "conversations": Conversation.objects.count(),
        "turns": Turn.objects.count(),
        "attributes": Attribute.objects.count(),
        "merged_from": Attribute.merged_from.through.objects.count(),
        "evidence": Attribute.evidence_turns.through.objects.count(),
        "prompts": Prompt.objects.count(),
    }
