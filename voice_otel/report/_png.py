"""PNG of the report page: a headless Chromium screenshot of the HTML file."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from voice_otel.report._paths import unwritable_reason

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


def check_png_path(png_path: str | Path) -> None:
    """Fail before rendering when Chromium would not write ``png_path`` as a PNG.

    Raises:
        ScreenshotError: the name does not end in ``.png``.
    """
    if Path(png_path).suffix.lower() != ".png":
        raise ScreenshotError(f"{png_path}: a PNG file name must end in .png")


def _chromium_says(stderr: str) -> str:
    """The last thing Chromium complained about, without its process/time prefix or D-Bus noise."""
    lines = []
    for line in stderr.splitlines():
        message = re.sub(r"^\[[^\]]*\]\s*", "", line.strip())
        if message and "dbus" not in line.lower():
            lines.append(message)
    return lines[-1] if lines else "no message"


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
        ScreenshotError: ``png_path`` does not end in ``.png`` or cannot be written, no
            Chromium, it failed, or it wrote no image.
    """
    check_png_path(png_path)
    browser = find_chromium()
    if browser is None:
        raise ScreenshotError(
            f"no Chromium found (tried {', '.join(CANDIDATES)}; set {ENV_BROWSER}); "
            "on Debian: apt-get install chromium"
        )
    source = Path(html_path).resolve()
    target = Path(png_path).resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
    except OSError as exc:
        raise ScreenshotError(
            f"cannot write {png_path}: {unwritable_reason(png_path, exc)}"
        ) from exc
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
        said = _chromium_says(done.stderr or "")
        raise ScreenshotError(f"Chromium wrote no screenshot (exit {done.returncode}): {said}")
    logger.info("report: screenshot %s", target)
    return target
