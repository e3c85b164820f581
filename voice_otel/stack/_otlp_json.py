"""Read traces back from Jaeger's query API (``/api/v3``), which answers in OTLP/JSON."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StoredSpan", "parse_otlp_json"]


@dataclass(frozen=True)
class StoredSpan:
    """One span as Jaeger returns it, with attributes flattened to Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    attributes: dict[str, Any]
    status_code: str  # "UNSET" | "OK" | "ERROR"
    start_time_ns: int = 0  # Unix epoch nanoseconds
    end_time_ns: int = 0


def parse_otlp_json(payload: Mapping[str, Any]) -> list[StoredSpan]:
    """Flatten an OTLP/JSON ``{"resourceSpans": [...]}`` document into :class:`StoredSpan`."""
    spans: list[StoredSpan] = []
    for resource_spans in payload.get("resourceSpans") or []:
        resource = _attributes(resource_spans.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                status = span.get("status", {}).get("code", "UNSET")
                spans.append(
                    StoredSpan(
                        trace_id=_hex_id(span.get("traceId", "")),
                        span_id=_hex_id(span.get("spanId", "")),
                        parent_span_id=_hex_id(span.get("parentSpanId", "")),
                        name=span.get("name", ""),
                        service=service,
                        attributes=_attributes(span.get("attributes")),
                        status_code=_STATUS.get(status, str(status)),
                        start_time_ns=int(span.get("startTimeUnixNano") or 0),
                        end_time_ns=int(span.get("endTimeUnixNano") or 0),
                    )
                )
    return spans


_STATUS = {
    0: "UNSET",
    1: "OK",
    2: "ERROR",
    "STATUS_CODE_UNSET": "UNSET",
    "STATUS_CODE_OK": "OK",
    "STATUS_CODE_ERROR": "ERROR",
}


def _hex_id(value: str) -> str:
    """Ids are hex in OTLP/JSON; accept base64 (protobuf JSON) too."""
    if not value or all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return base64.b64decode(value).hex()


def _attributes(items: Any) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items or []}


def _any_value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values") or []]
    return None
