"""Click parameter types shared by the ``voice-otel`` commands."""

from __future__ import annotations

import math
from typing import Any

import click

__all__ = ["Seconds"]


class Seconds(click.FloatRange):
    """A finite number of seconds within a range; ``nan`` and ``inf`` are refused.

    ``click.FloatRange`` alone lets ``nan`` through (it compares false with every bound) and
    ``inf`` when there is no upper bound.

    Example:
        ``@click.option("--grace", type=Seconds(min=0.0), default=10.0)``
    """

    name = "seconds"

    def __init__(
        self,
        min: float | None = 0.0,
        max: float | None = None,
        min_open: bool = False,
        max_open: bool = False,
    ) -> None:
        super().__init__(min=min, max=max, min_open=min_open, max_open=max_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{seconds} is not a finite number of seconds", param, ctx)
        return seconds
