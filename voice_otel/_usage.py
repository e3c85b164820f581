"""Usage (tokens, audio seconds, characters) and its cost from an offline price table.

The table ships with the package (``prices.json``, versioned by date) and is never downloaded.
Users override or extend it with ``configure(prices=...)``: a path to a JSON file of the same
shape, or a mapping ``{"provider/model": {...}}``; ``"provider/*"`` matches any model.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PRICE_KEYS = (
    "input_per_1m_tokens",
    "output_per_1m_tokens",
    "input_audio_per_minute",
    "output_audio_per_minute",
    "per_1m_characters",
)


@dataclass
class Usage:
    """What one stage call consumed. All values are non-negative; zero means not reported."""

    input_tokens: float = 0
    output_tokens: float = 0
    input_audio_seconds: float = 0.0
    output_audio_seconds: float = 0.0
    characters: float = 0

    def add(self, **values: Any) -> list[str]:
        """Add reported values; returns the names of values rejected as invalid."""
        rejected = []
        for name, value in values.items():
            if value is None:
                continue
            if name not in USAGE_FIELDS or not _valid_amount(value):
                rejected.append(name)
                continue
            total = getattr(self, name) + value
            if total > MAX_AMOUNT:
                rejected.append(name)
                continue
            setattr(self, name, total)
        return rejected

    def merge(self, other: Usage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __bool__(self) -> bool:
        return bool(
            self.input_tokens
            or self.output_tokens
            or self.input_audio_seconds
            or self.output_audio_seconds
            or self.characters
        )


USAGE_FIELDS = frozenset(f.name for f in fields(Usage))
# No call uses this much of anything; past it counts stop being exact, and a total no longer fits
# the 64-bit integer a span attribute holds.
MAX_AMOUNT = 2**53


def _valid_amount(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class PriceTable:
    """Prices per ``provider/model`` key, with a version for the span attribute."""

    version: str
    prices: dict[str, dict[str, float]]

    def lookup(self, provider: str | None, model: str | None) -> dict[str, float] | None:
        if not provider:
            return None
        price = self.prices.get(f"{provider}/{model}")  # an exact entry wins, even if empty
        return price if price is not None else self.prices.get(f"{provider}/*")

    def cost(self, provider: str | None, model: str | None, usage: Usage) -> float | None:
        """Cost in USD of ``usage``, or None when the table has no price for the model."""
        price = self.lookup(provider, model)
        if price is None:
            return None
        g = price.get
        return (
            usage.input_tokens * g("input_per_1m_tokens", 0.0) / 1e6
            + usage.output_tokens * g("output_per_1m_tokens", 0.0) / 1e6
            + usage.input_audio_seconds * g("input_audio_per_minute", 0.0) / 60
            + usage.output_audio_seconds * g("output_audio_per_minute", 0.0) / 60
            + usage.characters * g("per_1m_characters", 0.0) / 1e6
        )

    def merged(self, overrides: dict[str, dict[str, float]], version: str | None) -> PriceTable:
        return PriceTable(
            version=version or f"{self.version}+custom", prices={**self.prices, **overrides}
        )


def _validate(prices: Any, source: str) -> dict[str, dict[str, float]]:
    if not isinstance(prices, dict):
        raise ValueError(f"{source}: prices must be a mapping of 'provider/model' to prices")
    out: dict[str, dict[str, float]] = {}
    for key, entry in prices.items():
        if not isinstance(key, str) or "/" not in key:
            raise ValueError(f"{source}: price key {key!r} must look like 'provider/model'")
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: price entry for {key!r} must be a mapping")
        for name, value in entry.items():
            if name not in PRICE_KEYS:
                raise ValueError(
                    f"{source}: unknown price {name!r} for {key!r}; use one of "
                    + ", ".join(PRICE_KEYS)
                )
            if not _valid_amount(value):
                raise ValueError(f"{source}: price {name} for {key!r} must be a number >= 0")
        out[key] = {k: float(v) for k, v in entry.items()}
    return out


def default_table() -> PriceTable:
    raw = json.loads(resources.files("voice_otel").joinpath("prices.json").read_text())
    return PriceTable(version=raw["version"], prices=_validate(raw["prices"], "prices.json"))


def load_table(prices: str | Path | dict[str, Any] | None) -> PriceTable:
    """The shipped table, overridden by ``prices`` (a JSON file path or a mapping)."""
    table = default_table()
    if prices is None:
        return table
    if isinstance(prices, str | Path):
        path = Path(prices)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"prices file {path}: cannot read it as JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"prices file {path}: must hold a JSON object like prices.json")
        return table.merged(_validate(raw.get("prices", raw), str(path)), raw.get("version"))
    if not isinstance(prices, dict):
        raise ValueError(
            f"prices must be a path to a JSON file or a mapping, not {type(prices).__name__}"
        )
    entries = prices.get("prices", prices)
    return table.merged(_validate(entries, "prices"), prices.get("version"))


_table: PriceTable | None = None


def price_table() -> PriceTable:
    global _table
    if _table is None:
        _table = default_table()
    return _table


def set_price_table(table: PriceTable) -> None:
    global _table
    _table = table
