"""The report page rendered by a real headless Chromium: the DOM holds the charts and the PNG
screenshot shows them (the chart colours are on screen, the image is not blank).

Without Chromium the test is skipped locally; under CI=true it fails.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_report import write_fixture

from voice_otel import report
from voice_otel.cli import main
from voice_otel.report._png import headless_args
from voice_otel.report._svg import COLORS


@pytest.fixture
def chromium() -> str:
    found = report.find_chromium()
    if found is None:
        message = "Chromium not installed (scripts/install-system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG into rows of raw pixel bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(_rgb(line)))
        previous = line
    return width, height, rows


def _rgb(rgba: bytearray) -> bytearray:
    out = bytearray()
    for i in range(0, len(rgba), 4):
        out += rgba[i : i + 3]
    return out


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_dump_dom_shows_the_charts(chromium: str, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    report.write_report(report.load_json_lines(write_fixture(tmp_path / "run.jsonl")), html)

    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [*headless_args(chromium, profile), "--dump-dom", html.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dom = done.stdout
    assert done.returncode == 0, done.stderr[-500:]
    assert dom.count("<svg") == 2
    assert 'class="chart waterfall"' in dom and 'class="chart percentiles"' in dom
    assert dom.count('class="bar bar-llm"') == 5
    assert dom.count('class="bar bar-p99"') == 5


def test_png_screenshot_shows_the_charts(chromium: str, tmp_path: Path) -> None:
    fixture = write_fixture(tmp_path / "run.jsonl")
    html, png = tmp_path / "report.html", tmp_path / "report.png"

    result = CliRunner().invoke(
        main, ["report", "--from-json", str(fixture), "--out", str(html), "--png", str(png)]
    )

    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {html} and {png}\n"  # both as given
    width, height, rows = read_png(png)
    assert width >= 960 and height >= 800
    pixels: Counter[tuple[int, int, int]] = Counter()
    for row in rows[::2]:
        for x in range(0, len(row), 6):
            pixels[(row[x], row[x + 1], row[x + 2])] += 1
    white = pixels[(255, 255, 255)]
    assert white < sum(pixels.values()) * 0.95, "screenshot is (nearly) blank"
    for component in ("stt", "llm", "tts"):
        assert pixels[_hex(COLORS[component])] > 50, f"no {component} bars on screen"
