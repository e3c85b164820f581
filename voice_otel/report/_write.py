"""Writing the report to disk: the HTML page and, optionally, its screenshot."""

from __future__ import annotations

import logging
from pathlib import Path

from voice_otel.report._html import MAX_TABLE_ROWS, render_html
from voice_otel.report._model import ReportData
from voice_otel.report._png import ScreenshotError, check_png_path, screenshot

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

    Both paths are returned as given.

    Raises:
        ScreenshotError: a PNG was asked for and could not be made (the HTML page is written
            all the same, and the message says where).
        OSError: the HTML page could not be written.
    """
    html_file = Path(html_path)
    if png_path is not None:
        check_png_path(png_path)  # before any work, so a typo costs nothing
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(render_html(data), encoding="utf-8")
    logger.info("report: wrote %s", html_file)
    if png_path is None:
        return html_file, None

    try:
        screenshot(html_file, png_path, height=min(page_height(data), 16000))
    except ScreenshotError as exc:
        raise ScreenshotError(f"{exc}; the HTML page was written to {html_file}") from exc
    return html_file, Path(png_path)
