"""``voice-otel stack up|status|down`` with the real programs, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _stack_support import require

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_otel.cli", "stack", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "VOICE_OTEL_CONFIG_DIR": str(Path(__file__).parents[2] / "collector")},
        check=False,
    )


def test_stack_up_status_down(tmp_path: Path) -> None:
    require("collector", "jaeger", "prometheus", "alertmanager")
    workdir = tmp_path / "run"
    up = cli("up", "--free-ports", "--workdir", str(workdir), "--scrape-interval", "2s")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((workdir / "state.json").read_text())
        assert set(state) == {"collector", "jaeger", "prometheus", "alertmanager"}
        assert "otlp_endpoint=" in up.stdout

        for entry in state.values():
            assert httpx.get(entry["ready_url"], timeout=5).status_code == 200

        status = cli("status", "--workdir", str(workdir))
        assert status.returncode == 0, status.stdout + status.stderr

        again = cli("up", "--free-ports", "--workdir", str(workdir))
        assert again.returncode != 0
        assert "already up" in again.stderr
    finally:
        down = cli("down", "--workdir", str(workdir))
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped") == 4, down.stdout
    for entry in state.values():
        assert not Path(f"/proc/{entry['pid']}").exists() or _is_zombie(entry["pid"])

    status = cli("status", "--workdir", str(workdir))
    assert status.returncode != 0


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
