"""PNG of the report page: a headless Chromium screenshot of the HTML file."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_BROWSER = "VOICE_OTEL_CHROMIUM"


class ScreenshotError(RuntimeError):
    """No browser was found, or it did not write the screenshot."""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable: ``$VOICE_OTEL_CHROMIUM`` or the first on PATH."""
    configured = os.environ.get(ENV_BROWSER)
    if configured:
        return shutil.which(configured) or (configured if Path(configured).is_file() else None)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def headless_args(browser: str, profile: str) -> list[str]:
    """A headless, offline, throw-away-profile Chromium command line (no page yet)."""
    return [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


def screenshot(
    html_path: str | Path,
    png_path: str | Path,
    *,
    width: int = 1010,
    height: int = 1400,
    timeout: float = 120.0,
) -> Path:
    """Render ``html_path`` in headless Chromium and save a ``width`` x ``height`` PNG.

    Raises:
        ScreenshotError: no Chromium, it failed, or it wrote no image.
    """
    browser = find_chromium()
    if browser is None:
        raise ScreenshotError(
            f"no Chromium found (tried {', '.join(CANDIDATES)}; set {ENV_BROWSER}); "
            "on Debian: apt-get install chromium"
        )
    source = Path(html_path).resolve()
    target = Path(png_path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="voice-otel-chromium-") as profile:
        command = [
            *headless_args(browser, profile),
            f"--window-size={width},{height}",
            f"--screenshot={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScreenshotError(f"Chromium did not finish: {exc}") from exc
    if not target.is_file() or target.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise ScreenshotError(f"Chromium wrote no screenshot (exit {done.returncode}): {tail}")
    logger.info("report: screenshot %s", target)
    return target
