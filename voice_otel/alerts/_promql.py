"""PromQL building blocks: label names, durations, numbers and bucket matchers."""

from __future__ import annotations

import math
import re

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# Prometheus' own order of units (without its y and w); ASCII digits only, as Prometheus reads.
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def label(attribute_key: str) -> str:
    """Prometheus label name of an attribute key: ``voice.stage`` -> ``voice_stage``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute_key)


def duration(seconds: float) -> str:
    """Format whole seconds as a Prometheus duration (``90`` -> ``1m30s``; at least ``1s``)."""
    remaining = max(1, round(seconds))
    parts = []
    for suffix, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts)


def duration_parts(text: str) -> dict[str, int]:
    """The units of a Prometheus duration and their counts: ``1m30s`` -> ``{"m": 1, "s": 30}``.

    The text is read exactly as given (no surrounding spaces); units are ``d``, ``h``, ``m``,
    ``s`` and ``ms``, largest first, each at most once.

    Raises:
        ValueError: The text is not such a duration, or it is zero.
    """
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a duration like 30s, 5m, 1h30m: {text!r}")
    parts = {unit: int(n) for unit, n in zip(_UNIT_MS, match.groups(), strict=True) if n}
    if not any(parts.values()):
        raise ValueError(f"duration must be positive: {text!r}")
    return parts


def parse_seconds(text: str) -> float:
    """Seconds in a Prometheus duration, ``ms`` included: ``1m30s`` -> 90.0, ``500ms`` -> 0.5.

    Raises:
        ValueError: as `duration_parts`.
    """
    return sum(n * _UNIT_MS[unit] for unit, n in duration_parts(text).items()) / 1000


def parse_duration(text: str) -> int:
    """Whole seconds in a Prometheus duration (surrounding spaces ignored): ``1h30m`` -> ``5400``.

    Raises:
        ValueError: The text is not such a duration, it is zero, or not whole seconds.
    """
    seconds = parse_seconds(text.strip())
    if not seconds.is_integer():
        raise ValueError(f"duration must be whole seconds: {text!r}")
    return int(seconds)


def number(value: float) -> str:
    """A float as the shortest PromQL literal that reads back to it (``0.05``, ``14.4``)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    rounded = round(float(value), 9)
    if rounded.is_integer():
        return str(int(rounded))
    return repr(rounded)


def string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (``a"b`` -> ``"a\\"b"``)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# What Python's re accepts but RE2 (Prometheus' regex engine) does not: lookaround, atomic
# groups, conditionals, backreferences and possessive quantifiers. Escaped pairs come first so
# that ``\\1`` (a backslash, then 1) is not read as a backreference.
_NOT_RE2 = re.compile(r"\\[^1-9]|(\(\?(?:[=!>(]|<[=!]|P=)|\\[1-9]|[*+?}]\+)")


def check_regex(text: str) -> None:
    """Refuse a regex Prometheus cannot use in a ``=~`` matcher.

    Raises:
        ValueError: Python cannot compile it, or it uses a construct RE2 lacks.
    """
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    if any(match.group(1) for match in _NOT_RE2.finditer(text)):
        raise ValueError(
            "Prometheus regular expressions (RE2) have no lookaround, backreferences, atomic "
            "groups or possessive quantifiers"
        )


def le_matcher(bound: float) -> str:
    """Match a histogram bucket's ``le`` label whichever exporter wrote it.

    The Python SDK's exporter writes ``le="1.0"``, the collector's exporter ``le="1"``;
    Prometheus 2.x compares label values as text, so integral bounds need both spellings.
    """
    if float(bound).is_integer():
        whole = str(int(bound))
        return f'le=~"{whole}|{whole}.0"'
    return f'le="{number(bound)}"'


def sum_rate(by: str, selector: str, window: str) -> str:
    """``sum by (...) (rate(selector[window]))``, one part per line, ending in a newline."""
    return f"sum by ({by}) (\n  rate({selector}[{window}])\n)\n"


def indent(text: str, spaces: int = 2) -> str:
    """Indent every line of a multi-line PromQL fragment."""
    pad = " " * spaces
    return "".join(f"{pad}{line}\n" for line in text.splitlines())
