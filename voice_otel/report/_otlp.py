"""Read turn timings from an OTLP-JSON lines file (the embedded default's local record).

Each line is an OTLP/JSON export request. Turns are the ``voice.turn`` spans; their
``voice.turn.latency`` and ``voice.turn.latency.<component>`` attributes give the waterfall.
Turns without a latency (the bot never spoke) are skipped. Lines holding metrics are ignored.
A line that is not such a request (not text, not JSON, the wrong shape, a latency that is not a
number) stops the read with its file and line number: the file is not what the report expects,
and a report of part of it would mislead.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voice_otel._contract import LATENCY_COMPONENTS, Attr, GenAI, SpanName
from voice_otel.report._model import ReportData, TurnTiming, sample_percentiles

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


class ReportSourceError(ValueError):
    """The input holds no data a report can be made from, or cannot be read."""


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _objects(value: Any, what: str, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of JSON objects (absent is empty), or the line's error."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        shown = _kind(value) if not isinstance(value, list) else "an array holding non-objects"
        raise ReportSourceError(f"{where}: {what} is {shown}, not an array of objects")
    return value


def _value(any_value: dict[str, Any]) -> Any:
    """The Python value of an OTLP ``AnyValue``.

    Raises:
        ValueError: a number field holds something that is not a number.
    """
    for key in ("doubleValue", "double_value"):
        if key in any_value:
            return _parse(float, any_value[key])
    for key in ("intValue", "int_value"):
        if key in any_value:
            return _parse(int, any_value[key])  # OTLP/JSON writes 64-bit integers as strings
    for key in ("stringValue", "string_value", "boolValue", "bool_value"):
        if key in any_value:
            return any_value[key]
    return None


def _parse(kind: type[float] | type[int], raw: Any) -> float | int:
    # float("1e3") and int(" 7 ") are what OTLP/JSON allows; True, lists and objects are not.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"{_kind(raw)}, not a number")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{raw!r}, not a number") from None


def _attributes(span: dict[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for attribute in _objects(span.get("attributes"), "a span's attributes", where):
        key = attribute.get("key")
        value = attribute.get("value") or {}
        if not isinstance(key, str) or not isinstance(value, dict):
            raise ReportSourceError(f"{where}: a span attribute is not a key and a value object")
        try:
            out[key] = _value(value)
        except ValueError as exc:
            raise ReportSourceError(f"{where}: span attribute {key} is {exc}") from None
    return out


def _lines(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``("file:line", parsed JSON)`` for every non-blank line."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                if number == 1 and raw.startswith(_GZIP_MAGIC):
                    raise ReportSourceError(
                        f"{where}: the file is gzip-compressed; decompress it first (gunzip)"
                    ) from None
                raise ReportSourceError(
                    f"{where}: not UTF-8 text (is this a binary file, not OTLP-JSON lines?)"
                ) from None
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise ReportSourceError(f"{where}: not a JSON line ({exc})") from exc


def _numbered_spans(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, request in _lines(path):
        if not isinstance(request, dict):
            raise ReportSourceError(
                f"{where}: not an OTLP/JSON export request ({_kind(request)}, not an object)"
            )
        resources = _objects(
            _get(request, "resourceSpans", "resource_spans"), "resourceSpans", where
        )
        for resource_spans in resources:
            scopes = _get(resource_spans, "scopeSpans", "scope_spans")
            for scope_spans in _objects(scopes, "scopeSpans", where):
                for span in _objects(scope_spans.get("spans"), "spans", where):
                    yield where, span


def iter_spans(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every span of an OTLP-JSON lines file, in file order.

    Raises:
        ReportSourceError: a line is not UTF-8 text, not JSON, or not an OTLP/JSON request.
    """
    for _, span in _numbered_spans(path):
        yield span


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _latency(attrs: dict[str, Any], key: str, where: str) -> float | None:
    """A latency attribute in seconds; absent is None, anything but a finite number >= 0 fails."""
    if attrs.get(key) is None:
        return None
    value = _number(attrs[key])
    if value is None or not math.isfinite(value) or value < 0:
        raise ReportSourceError(
            f"{where}: span attribute {key} is {attrs[key]!r}, not a latency in seconds"
        )
    return value


def _start_ns(span: dict[str, Any], where: str) -> int:
    try:
        return int(_parse(int, _get(span, "startTimeUnixNano", "start_time_unix_nano") or 0))
    except ValueError as exc:
        raise ReportSourceError(f"{where}: a span's startTimeUnixNano is {exc}") from None


def turn_timings(path: str | Path) -> list[TurnTiming]:
    """The turns of the file that have a voice-to-voice latency.

    Ordered conversation by conversation (in the order the conversations started), and by start
    time within each, so concurrent conversations do not interleave in the waterfall.

    Raises:
        ReportSourceError: a line is malformed (its file and line number are in the message).
    """
    turns = []
    for where, span in _numbered_spans(path):
        if span.get("name") != SpanName.TURN:
            continue
        attrs = _attributes(span, where)
        latency = _latency(attrs, Attr.TURN_LATENCY, where)
        if latency is None:
            continue
        components = {}
        for component in LATENCY_COMPONENTS:
            value = _latency(attrs, f"{Attr.TURN_LATENCY}.{component}", where)
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
                start_ns=_start_ns(span, where),
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
    for where, span in _numbered_spans(path):
        if span.get("name") != SpanName.TURN:
            continue
        value = _number(_attributes(span, where).get(Attr.TURN_OBJECTIVE))
        if value is None:
            continue
        if math.isfinite(value) and value > 0:
            return value
        logger.warning("report: %s: ignoring %s=%r", where, Attr.TURN_OBJECTIVE, value)
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
