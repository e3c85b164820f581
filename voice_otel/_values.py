"""What values handed to the public API may become telemetry.

Span attributes leave voice_otel as str, bool, 64-bit int, finite float, or a sequence of one of
those types; names (provider, model, voice) and ids as strings; instants (turn marks, first
output) as finite numbers. Anything else a user passes (None, NaN, infinities, objects, mixed
lists, integers beyond 64 bits) is dropped here, before the SDK sees it: the SDK stores such
values on spans as they are, and an OTLP exporter fails a whole batch on an integer it cannot
encode. A dropped value is logged once per attribute key or argument, at WARNING.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(what: str, value: Any, why: str) -> None:
    with _warned_lock:
        if what in _warned:
            return
        _warned.add(what)
    logger.warning(
        "voice_otel: dropped %s=%s (%s); further invalid values there are not logged",
        what,
        _short(value),
        why,
    )


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar(value: Any) -> bool:
    if isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return isinstance(value, float) and math.isfinite(value)


def attribute_value(value: Any) -> Any:
    """``value`` as a valid attribute value, or None when it cannot be one."""
    if _scalar(value):
        return value
    if isinstance(value, list | tuple):
        kinds = {type(v) for v in value}
        if len(kinds) <= 1 and all(_scalar(v) for v in value):
            return tuple(value)
    return None


def attributes(raw: Mapping[Any, Any], where: str) -> dict[str, Any]:
    """The valid items of ``raw``; the others are dropped (and logged once per key)."""
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            _warn_once(f"{where} key {_short(key)}", value, "keys are non-empty strings")
            continue
        valid = attribute_value(value)
        if valid is None:
            _warn_once(
                f"{where} {key}",
                value,
                "values are str, bool, int, finite float, or a list of one of those",
            )
            continue
        clean[key] = valid
    return clean


def name(value: Any, what: str) -> str | None:
    """A provider, model or voice name: a non-empty string (a number is turned into one)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and _scalar(value):
        return str(value)
    _warn_once(what, value, "names are strings")
    return None


def identifier(value: Any, what: str) -> str | None:
    """A conversation or turn id: a string or an integer, as a string; None for a new one."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    _warn_once(what, value, "ids are strings; a new one was generated")
    return None


def instant(value: Any, what: str) -> float | None:
    """A ``time.monotonic()`` instant given by the user; None (meaning "now") if invalid."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    _warn_once(what, value, "instants are finite time.monotonic() values; now was used")
    return None


def duration(value: Any, what: str) -> float | None:
    """A non-negative, finite number of seconds given by the user; None if invalid."""
    if value is None:
        return None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    _warn_once(what, value, "durations are finite numbers of seconds >= 0")
    return None


# A duration computed from marks the user gave is recorded only up to this; beyond it the marks
# are wrong (no voice turn lasts a week), and summing such values would overflow a histogram.
MAX_DURATION = 7 * 24 * 3600.0


def measurable(value: float | None) -> bool:
    """True for a computed duration that may be recorded: not negative, at most a week."""
    return value is not None and 0 <= value <= MAX_DURATION
