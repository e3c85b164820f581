"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no fetch)."""

from __future__ import annotations

from html import escape

from voice_otel._contract import LATENCY_COMPONENTS
from voice_otel.report._model import PERCENTILES, ReportData
from voice_otel.report._svg import lines_svg, percentile_bars_svg, waterfall_svg

MAX_TABLE_ROWS = 500

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.source { color: #666; font-size: 13px; margin-bottom: 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; min-width: 120px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .name { font-size: 12px; color: #666; }
table { border-collapse: collapse; font-size: 12px; margin-top: 8px; }
th, td { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #666; font-size: 12px; }
"""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _cards(data: ReportData) -> str:
    cards = [("turns" if data.per_turn else "time steps", str(len(data.turns)))]
    overall = data.percentiles.get("voice-to-voice", {})
    for q in PERCENTILES:
        cards.append((f"voice-to-voice p{round(q * 100)}", _duration(overall.get(q))))
    share = data.within_objective
    if share is not None and data.objective is not None:
        cards.append((f"within {data.objective:g} s objective", f"{share:.0%}"))
    if data.per_turn:
        interrupted = sum(1 for t in data.turns if t.outcome == "interrupted")
        cards.append(("interrupted", str(interrupted)))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{escape(value)}</div>'
            f'<div class="name">{escape(name)}</div></div>'
            for name, value in cards
        )
        + "</div>"
    )


def _turn_table(data: ReportData) -> str:
    columns = ("latency", *LATENCY_COMPONENTS, *(("outcome",) if data.per_turn else ()))
    head = "".join(f"<th>{c}</th>" for c in columns)
    first = "turn" if data.per_turn else "time (UTC)"
    rows = []
    for turn in data.turns[:MAX_TABLE_ROWS]:
        cells = [escape(turn.label), _ms(turn.latency)]
        cells += [_ms(turn.components.get(c)) for c in LATENCY_COMPONENTS]
        if data.per_turn:
            cells.append(escape(turn.outcome))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    more = ""
    if len(data.turns) > MAX_TABLE_ROWS:
        more = f'<p class="note">First {MAX_TABLE_ROWS} of {len(data.turns)} rows.</p>'
    return (
        f'<table class="turns"><thead><tr><th>{first}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def render_html(data: ReportData) -> str:
    """The whole report page as HTML text."""
    per = "per turn" if data.per_turn else "per time step (mean of the turns in it)"
    sections = [
        f"<h1>{escape(data.title)}</h1>",
        f'<div class="source">{escape(data.source)}</div>',
        _cards(data),
        f"<h2>Voice-to-voice latency {per}, by stage</h2>",
        '<p class="note">Stacked from the bottom: STT, LLM to first token, TTS to first byte, '
        "other. Each bar's height is the time from the user stopping speaking to the bot's first "
        "audio. Letters above a bar: i interrupted, e error.</p>",
        waterfall_svg(data.turns, data.objective, data.per_turn),
    ]
    if data.percentiles:
        sections += [
            "<h2>Percentiles</h2>",
            percentile_bars_svg(data.percentiles),
        ]
    if data.lines:
        sections += [
            "<h2>Percentiles over time</h2>",
            lines_svg(data.lines, data.objective),
        ]
    sections += [f"<h2>{'Turns' if data.per_turn else 'Time steps'}</h2>", _turn_table(data)]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may be fetched: the page is meant to be mailed, archived and opened offline.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{escape(data.title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )
