"""Thresholds and objectives of the alert rules, with their defaults and validation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voice_otel._contract import VOICE_LATENCY_BUCKETS
from voice_otel.alerts._promql import check_regex, parse_duration

DEFAULT_RUNBOOK_BASE_URL = "docs/runbooks/"

# Upper bounds that keep every rendered number and duration one Prometheus can parse, and far
# beyond anything sensible.
_MAX_WINDOW_S = 365 * 86400
_MAX_COUNT = 10**9
_MAX_FOR_SCALE = 100.0


@dataclass(frozen=True)
class AlertConfig:
    """Everything a team tunes in the rules; the defaults are the shipped ``collector/rules``.

    Durations are seconds. Ratios are fractions (0.05 is 5 %). ``docs/alerts.md`` explains why
    each default is what it is.

    Example::

        config = AlertConfig(latency_objective_s=1.5, latency_target=0.99)
        files = render_rule_files(config)
    """

    # Voice-to-voice latency SLO: latency_target of turns answered within latency_objective_s.
    latency_objective_s: float = 1.0
    latency_target: float = 0.95
    slo_min_turns: int = 10  # turns needed in the long window before a burn-rate alert can fire

    # STT / LLM / TTS stages, per stage and provider.
    stage_window_s: int = 300
    stage_min_calls: int = 10  # calls needed in the window before a ratio or p95 is trusted
    stage_error_ratio_warning: float = 0.05
    stage_error_ratio_critical: float = 0.25
    llm_ttft_p95_s: float = 0.8
    tts_ttfb_p95_s: float = 0.5

    # Interruptions (barge-ins per turn), compared with the last day.
    interruption_window_s: int = 900
    interruption_baseline_factor: float = 2.0
    interruption_ratio_floor: float = 0.15
    interruption_min_turns: int = 20

    # Spend, from the offline price table.
    cost_budget_usd_per_hour: float = 5.0

    # Telemetry pipeline (the collector's own metrics and its scrape target).
    # Regex on the `job` label of the collector's scrape targets (collector/prometheus.yml).
    collector_job: str = "otelcol|voice-otel-collector"
    exporter_failure_ratio: float = 0.01
    exporter_queue_fill_ratio: float = 0.8

    # Host of the voice agent (system metrics).
    host_cpu_ratio: float = 0.9
    host_memory_ratio: float = 0.9

    # Rendering.
    for_scale: float = 1.0  # multiplies every `for`; tests use a small value
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL

    def __post_init__(self) -> None:
        self._check_types_and_bounds()
        if self.latency_objective_s not in VOICE_LATENCY_BUCKETS:
            raise ValueError(
                f"latency_objective_s={self.latency_objective_s} is not a bucket boundary of "
                f"voice.turn.latency; pick one of {VOICE_LATENCY_BUCKETS}"
            )
        if not 0.5 <= self.latency_target < 1:
            raise ValueError(f"latency_target must be in [0.5, 1), got {self.latency_target}")
        if 14.4 * (1 - self.latency_target) > 1:
            raise ValueError(
                f"latency_target={self.latency_target} leaves too large an error budget for a "
                "14.4x burn rate; use a target of 0.931 or more"
            )
        for name in (
            "stage_error_ratio_warning",
            "stage_error_ratio_critical",
            "interruption_ratio_floor",
            "exporter_failure_ratio",
            "exporter_queue_fill_ratio",
            "host_cpu_ratio",
            "host_memory_ratio",
        ):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} is a fraction in (0, 1), got {value}")
        if self.stage_error_ratio_critical <= self.stage_error_ratio_warning:
            raise ValueError("stage_error_ratio_critical must be above stage_error_ratio_warning")
        for name in (
            "slo_min_turns",
            "stage_window_s",
            "stage_min_calls",
            "interruption_window_s",
            "interruption_min_turns",
            "llm_ttft_p95_s",
            "tts_ttfb_p95_s",
            "interruption_baseline_factor",
            "cost_budget_usd_per_hour",
            "for_scale",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.for_scale > _MAX_FOR_SCALE:
            raise ValueError(
                f"for_scale multiplies every `for`; it must be at most {_MAX_FOR_SCALE:g}, "
                f"got {self.for_scale:g}"
            )
        _check_collector_job(self.collector_job)
        if not self.runbook_base_url or any(
            c.isspace() or not c.isprintable() for c in self.runbook_base_url
        ):
            raise ValueError(
                "runbook_base_url must be a URL or path without spaces, e.g. "
                f"https://github.com/<org>/<repo>/blob/main/docs/runbooks/; got "
                f"{self.runbook_base_url!r}"
            )

    def _check_types_and_bounds(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, str):
                if not isinstance(value, str):
                    raise ValueError(f"{f.name} must be text, got {value!r}")
            elif isinstance(f.default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{f.name} must be a whole number, got {value!r}")
                if f.name.endswith("_s") and value > _MAX_WINDOW_S:
                    raise ValueError(f"{f.name} must be at most 365d, got {value} seconds")
                if value > _MAX_COUNT:
                    raise ValueError(f"{f.name} must be at most {_MAX_COUNT}, got {value}")
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")

    @property
    def error_budget(self) -> float:
        """The SLO's error budget: the fraction of turns allowed over the objective."""
        return round(1 - self.latency_target, 10)

    def for_(self, seconds: int) -> int:
        """A rule's ``for`` after :attr:`for_scale`, at least one second."""
        return max(1, round(seconds * self.for_scale))

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults, for the rule files' header."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> AlertConfig:
        """Build a config from ``name=value`` text settings (the CLI's ``--set``).

        Windows (whole-second fields ending in ``_s``) take seconds or a duration like ``5m``,
        ``1h``; counts (``slo_min_turns``, ``stage_min_calls``, ``interruption_min_turns``) take
        whole numbers; the other numbers take finite decimals.

        Raises:
            ValueError: An unknown name or a bad value; the message names the setting.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, text in settings.items():
            if name not in fields:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(fields))}")
            values[name] = _parse_setting(name, text, fields[name].default)
        return cls(**values)


def _parse_setting(name: str, text: str, default: object) -> Any:
    if isinstance(default, str):
        return text
    if isinstance(default, int) and name.endswith("_s"):
        try:
            return int(text) if text.isdigit() else parse_duration(text)
        except ValueError:
            raise ValueError(
                f"{name}={text!r}: expected whole seconds or a positive duration like 30s, 5m, "
                "1h30m"
            ) from None
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(
                f"{name}={text!r}: expected a whole number, e.g. {name}={default}"
            ) from None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{name}={text!r}: expected a finite number, e.g. {name}={default}")
    return value


def _check_collector_job(job: str) -> None:
    if not job:
        raise ValueError(
            "collector_job must name the collector's scrape job (a regex, e.g. otelcol|collector)"
        )
    if any(not c.isprintable() for c in job):
        raise ValueError(f"collector_job={job!r} must not contain a control character")
    if "{{" in job or "}}" in job:
        raise ValueError(
            f"collector_job={job!r} must not contain {{{{ or }}}}: alert descriptions show it "
            "and are templates"
        )
    try:
        check_regex(job)
    except ValueError as exc:
        raise ValueError(f"collector_job={job!r}: {exc}") from None
