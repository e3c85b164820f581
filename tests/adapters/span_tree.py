"""Reading the span tree an adapter recorded: conversations, their turns, the turns' stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

CONVERSATION = "voice.conversation"
TURN = "voice.turn"


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """Spans whose parent is ``parent``, oldest first."""
    parent_id = parent.context.span_id
    found = [s for s in spans if s.parent is not None and s.parent.span_id == parent_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def turns_of(spans: Sequence[ReadableSpan], conversation: ReadableSpan) -> list[ReadableSpan]:
    """The conversation's turns, by index."""
    found = [s for s in children(spans, conversation) if s.name == TURN]
    return sorted(found, key=lambda s: attr(s, "voice.turn.index"))


def stages_of(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> dict[str, list[ReadableSpan]]:
    """The STT, LLM and TTS spans directly under ``parent``, by stage."""
    found: dict[str, list[ReadableSpan]] = {"stt": [], "llm": [], "tts": []}
    for span in children(spans, parent):
        stage = (span.attributes or {}).get("voice.stage")
        if stage is not None:
            found[str(stage)].append(span)
    return found


def attr(span: ReadableSpan, key: str) -> Any:
    """An attribute of ``span`` (fails, naming the span, when it is missing)."""
    attributes = dict(span.attributes or {})
    assert key in attributes, f"{span.name} has no {key}: {attributes}"
    return attributes[key]


def seconds(span: ReadableSpan) -> float:
    """Duration of a finished span."""
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9
