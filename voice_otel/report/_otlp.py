"""Read turn timings from an OTLP-JSON lines file (the embedded default's local record).

Each line is an OTLP/JSON export request. Turns are the ``voice.turn`` spans; their
``voice.turn.latency`` and ``voice.turn.latency.<component>`` attributes give the waterfall.
Turns without a latency (the bot never spoke) are skipped. Lines holding metrics are ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voice_otel._contract import LATENCY_COMPONENTS, Attr, GenAI, SpanName
from voice_otel.report._model import ReportData, TurnTiming, sample_percentiles

logger = logging.getLogger(__name__)


class ReportSourceError(ValueError):
    """The input holds no data a report can be made from, or cannot be read."""


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _value(any_value: dict[str, Any]) -> Any:
    for key in ("doubleValue", "double_value"):
        if key in any_value:
            return float(any_value[key])
    for key in ("intValue", "int_value"):
        if key in any_value:
            return int(any_value[key])  # OTLP/JSON writes 64-bit integers as strings
    for key in ("stringValue", "string_value", "boolValue", "bool_value"):
        if key in any_value:
            return any_value[key]
    return None


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value", {})) for a in span.get("attributes", [])}


def iter_spans(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every span of an OTLP-JSON lines file, in file order.

    Raises:
        ReportSourceError: a line is not JSON.
    """
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReportSourceError(f"{path}:{number}: not a JSON line ({exc})") from exc
            for resource_spans in _get(request, "resourceSpans", "resource_spans") or []:
                for scope_spans in _get(resource_spans, "scopeSpans", "scope_spans") or []:
                    yield from scope_spans.get("spans", [])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def turn_timings(path: str | Path) -> list[TurnTiming]:
    """The turns of the file that have a voice-to-voice latency.

    Ordered conversation by conversation (in the order the conversations started), and by start
    time within each, so concurrent conversations do not interleave in the waterfall.
    """
    turns = []
    for span in iter_spans(path):
        if span.get("name") != SpanName.TURN:
            continue
        attrs = _attributes(span)
        latency = _number(attrs.get(Attr.TURN_LATENCY))
        if latency is None:
            continue
        components = {}
        for component in LATENCY_COMPONENTS:
            value = _number(attrs.get(f"{Attr.TURN_LATENCY}.{component}"))
            if value is not None:
                components[component] = value
        index = attrs.get(Attr.TURN_INDEX)
        turns.append(
            TurnTiming(
                label=str(index) if index is not None else "?",
                latency=latency,
                components=components,
                group=str(attrs.get(GenAI.CONVERSATION_ID) or ""),
                outcome=str(attrs.get(Attr.OUTCOME) or "ok"),
                start_ns=int(_get(span, "startTimeUnixNano", "start_time_unix_nano") or 0),
            )
        )
    # Conversation by conversation (in the order they started), each in turn order.
    turns.sort(key=lambda t: t.start_ns)
    first_seen: dict[str, int] = {}
    for turn in turns:
        first_seen.setdefault(turn.group, len(first_seen))
    turns.sort(key=lambda t: (first_seen[t.group], t.start_ns))
    return turns


def _objective(path: str | Path) -> float | None:
    for span in iter_spans(path):
        if span.get("name") == SpanName.TURN:
            value = _number(_attributes(span).get(Attr.TURN_OBJECTIVE))
            if value is not None:
                return value
    return None


def load_json_lines(path: str | Path, title: str = "Voice latency report") -> ReportData:
    """Build the report of an OTLP-JSON lines file.

    Raises:
        ReportSourceError: the file is unreadable or holds no turn with a latency.
    """
    try:
        turns = turn_timings(path)
        objective = _objective(path)
    except OSError as exc:
        raise ReportSourceError(f"cannot read {path}: {exc}") from exc
    if not turns:
        raise ReportSourceError(
            f"{path} holds no {SpanName.TURN} span with {Attr.TURN_LATENCY}; was the run "
            "recorded with json_path and did any turn reach the bot's first audio?"
        )
    logger.info("report: %s turns from %s", len(turns), path)
    return ReportData(
        title=title,
        source=f"{len(turns)} turns from {Path(path).name}",
        turns=turns,
        per_turn=True,
        percentiles=sample_percentiles(turns),
        objective=objective,
    )
