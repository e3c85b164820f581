"""A self-contained HTML latency report of a voice run, and its PNG.

The page shows a per-turn latency waterfall (stacked bars: STT, LLM to first token, TTS to first
byte, other) and latency percentiles, drawn as inline SVG: nothing is fetched, so it opens
offline and can be mailed or archived. The data comes from the embedded default's OTLP-JSON
lines file (one bar per turn) or from Prometheus (one bar per time step).

Example:
    >>> from voice_otel import report
    >>> data = report.load_json_lines("voice-otel-telemetry.jsonl")  # doctest: +SKIP
    >>> report.write_report(data, "report.html", png_path="report.png")  # doctest: +SKIP
"""

from __future__ import annotations

from voice_otel.report._html import render_html
from voice_otel.report._model import (
    PercentileLine,
    ReportData,
    TurnTiming,
    percentile,
    sample_percentiles,
)
from voice_otel.report._otlp import ReportSourceError, load_json_lines, turn_timings
from voice_otel.report._png import ScreenshotError, find_chromium, screenshot
from voice_otel.report._prometheus import load_prometheus
from voice_otel.report._write import page_height, write_report

__all__ = [
    "PercentileLine",
    "ReportData",
    "ReportSourceError",
    "ScreenshotError",
    "TurnTiming",
    "find_chromium",
    "load_json_lines",
    "load_prometheus",
    "page_height",
    "percentile",
    "render_html",
    "sample_percentiles",
    "screenshot",
    "turn_timings",
    "write_report",
]
