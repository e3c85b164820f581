"""Writing the report to disk: the HTML page and, optionally, its screenshot."""

from __future__ import annotations

import logging
from pathlib import Path

from voice_otel.report._html import MAX_TABLE_ROWS, render_html
from voice_otel.report._model import ReportData
from voice_otel.report._png import screenshot

logger = logging.getLogger(__name__)


def page_height(data: ReportData) -> int:
    """Roughly how tall the page renders, in CSS pixels (for the screenshot's window)."""
    charts = 1 + bool(data.percentiles) + bool(data.lines)
    rows = min(len(data.turns), MAX_TABLE_ROWS)
    return 220 + charts * 400 + 60 + rows * 21


def write_report(
    data: ReportData, html_path: str | Path, png_path: str | Path | None = None
) -> tuple[Path, Path | None]:
    """Write the HTML page and, when ``png_path`` is given, a screenshot of it.

    Raises:
        ScreenshotError: a PNG was asked for and Chromium could not make it.
    """
    html_file = Path(html_path)
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(render_html(data), encoding="utf-8")
    logger.info("report: wrote %s", html_file)
    png_file = None
    if png_path is not None:
        png_file = screenshot(html_file, png_path, height=min(page_height(data), 16000))
    return html_file, png_file
