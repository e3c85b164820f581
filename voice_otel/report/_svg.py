"""Inline SVG charts: the latency waterfall, percentile bars and percentile lines.

Plain SVG text, no script and nothing fetched, so the page renders offline, prints, and
screenshots the same in any browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from voice_otel._contract import LATENCY_COMPONENTS
from voice_otel.report._model import PERCENTILES, PercentileLine, TurnTiming

COLORS = {
    "stt": "#4e79a7",
    "llm": "#f28e2b",
    "tts": "#59a14f",
    "other": "#9c9c9c",
    "voice-to-voice": "#3b3b58",
}
PERCENTILE_COLORS = {0.5: "#76b7b2", 0.95: "#edc948", 0.99: "#e15759"}
OBJECTIVE_COLOR = "#d62728"

WIDTH = 960
HEIGHT = 340
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 20, 50


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``maximum``."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _axis(ticks: Sequence[float], plot_h: float, top: float) -> list[str]:
    parts = []
    highest = ticks[-1]
    for tick in ticks:
        y = top + plot_h - plot_h * tick / highest
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e3e3e3"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#555">{escape(_seconds(tick))}</text>'
        )
    return parts


def _legend(entries: Sequence[tuple[str, str]], y: float) -> list[str]:
    parts = []
    x = LEFT
    for label, color in entries:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(
            f'<text x="{x + 14}" y="{y}" font-size="12" fill="#333">{escape(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return parts


def _svg(kind: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def waterfall_svg(
    turns: Sequence[TurnTiming], objective: float | None = None, per_turn: bool = True
) -> str:
    """Stacked bars, one per turn (or time step): stt, llm, tts and other, bottom to top."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    highest = max([t.latency for t in turns] + [objective or 0.0])
    ticks = nice_ticks(highest)
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(turns), 1)
    bar_w = min(max(slot * 0.7, 1.0), 48.0)
    body = _axis(ticks, plot_h, TOP)

    label_every = max(1, math.ceil(len(turns) / 40))
    previous_group = None
    for i, turn in enumerate(turns):
        x = LEFT + i * slot + (slot - bar_w) / 2
        if per_turn and previous_group is not None and turn.group != previous_group:
            sx = LEFT + i * slot
            body.append(
                f'<line class="conversation-break" x1="{sx:.1f}" x2="{sx:.1f}" y1="{TOP}" '
                f'y2="{TOP + plot_h}" stroke="#888" stroke-dasharray="2 3"/>'
            )
        previous_group = turn.group
        y = float(TOP + plot_h)
        stacked = 0.0
        for component in LATENCY_COMPONENTS:
            value = turn.components.get(component, 0.0)
            if value <= 0:
                continue
            h = value * scale
            y -= h
            stacked += value
            body.append(
                f'<rect class="bar bar-{component}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" fill="{COLORS[component]}">'
                f"<title>{escape(f'{turn.label} {component}: {_seconds(value)}')}</title></rect>"
            )
        rest = turn.latency - stacked
        if not turn.components or rest > turn.latency * 0.01:
            # Latency with no breakdown (or a gap in it) is still drawn, in the total's colour.
            h = max(rest, 0.0) * scale
            y -= h
            body.append(
                f'<rect class="bar bar-unattributed" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" fill="{COLORS["voice-to-voice"]}"/>'
            )
        if turn.outcome != "ok":
            body.append(
                f'<text class="outcome" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" '
                f'text-anchor="middle" font-size="10" fill="#b00">{escape(turn.outcome[:1])}'
                f"<title>{escape(turn.outcome)}</title></text>"
            )
        if i % label_every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                f'font-size="11" fill="#555">{escape(turn.label)}</text>'
            )

    if objective is not None:
        y = TOP + plot_h - objective * scale
        body.append(
            f'<line class="objective" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{OBJECTIVE_COLOR}" stroke-dasharray="6 4"/>'
        )
    x_title = "turn" if per_turn else "time (UTC)"
    body.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 22}" text-anchor="middle" font-size="12" '
        f'fill="#333">{x_title}</text>'
    )
    entries = [(c, COLORS[c]) for c in LATENCY_COMPONENTS]
    if objective is not None:
        entries.append((f"objective {_seconds(objective)}", OBJECTIVE_COLOR))
    body += _legend(entries, HEIGHT - 6)
    return _svg("waterfall", "Voice-to-voice latency per turn, by stage", body)


def percentile_bars_svg(percentiles: dict[str, dict[float, float]]) -> str:
    """Grouped bars: p50, p95 and p99 of voice-to-voice latency and of each component."""
    groups = list(percentiles)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    highest = max((v for qs in percentiles.values() for v in qs.values()), default=0.0)
    ticks = nice_ticks(highest)
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(groups), 1)
    bar_w = slot * 0.8 / len(PERCENTILES)
    body = _axis(ticks, plot_h, TOP)
    for g, group in enumerate(groups):
        x0 = LEFT + g * slot + slot * 0.1
        for k, q in enumerate(PERCENTILES):
            value = percentiles[group].get(q)
            if value is None:
                continue
            h = value * scale
            x = x0 + k * bar_w
            y = TOP + plot_h - h
            name = f"p{round(q * 100)}"
            body.append(
                f'<rect class="bar bar-{name}" x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" '
                f'height="{h:.1f}" fill="{PERCENTILE_COLORS[q]}">'
                f"<title>{escape(f'{group} {name}: {_seconds(value)}')}</title></rect>"
            )
        body.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
            f'font-size="12" fill="#333">{escape(group)}</text>'
        )
    body += _legend([(f"p{round(q * 100)}", PERCENTILE_COLORS[q]) for q in PERCENTILES], HEIGHT - 6)
    return _svg("percentiles", "Latency percentiles", body)


def lines_svg(lines: Sequence[PercentileLine], objective: float | None = None) -> str:
    """Percentile lines of voice-to-voice latency over time."""
    points = [p for line in lines for p in line.points]
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    span = max(t1 - t0, 1.0)
    ticks = nice_ticks(max([v for _, v in points] + [objective or 0.0]))
    scale = plot_h / ticks[-1]
    body = _axis(ticks, plot_h, TOP)
    colors = dict(zip(("p50", "p95", "p99"), PERCENTILE_COLORS.values(), strict=True))
    single = t1 == t0  # one step in range: a point per line, in the middle

    def x_of(t: float) -> float:
        return LEFT + (plot_w / 2 if single else (t - t0) / span * plot_w)

    for line in lines:
        coords = " ".join(f"{x_of(t):.1f},{TOP + plot_h - v * scale:.1f}" for t, v in line.points)
        color = colors.get(line.name, "#333")
        body.append(
            f'<polyline class="line line-{escape(line.name)}" points="{coords}" fill="none" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        if len(line.points) == 1:  # a polyline of one point draws nothing
            t, v = line.points[0]
            body.append(
                f'<circle class="point point-{escape(line.name)}" cx="{x_of(t):.1f}" '
                f'cy="{TOP + plot_h - v * scale:.1f}" r="4" fill="{color}"/>'
            )
    if objective is not None:
        y = TOP + plot_h - objective * scale
        body.append(
            f'<line class="objective" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{OBJECTIVE_COLOR}" stroke-dasharray="6 4"/>'
        )
    stamps = [(t0, "middle")] if single else [(t0, "start"), (t1, "end")]
    for t, anchor in stamps:
        x = x_of(t)
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M" if span >= 600 else "%H:%M:%S")
        body.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="{anchor}" font-size="11" '
            f'fill="#555">{label}</text>'
        )
    body += _legend([(line.name, colors.get(line.name, "#333")) for line in lines], HEIGHT - 6)
    return _svg("percentile-lines", "Voice-to-voice latency percentiles over time", body)
