"""``voice-otel stack up|status|down`` with the real programs, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _stack_support import eventually, require

pytestmark = pytest.mark.integration


def voice_otel(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_OTEL_CONFIG_DIR": str(Path(__file__).parents[2] / "collector")}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "voice_otel.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=cwd,
        check=False,
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return voice_otel("stack", *args)


def test_stack_up_status_down(tmp_path: Path) -> None:
    require("collector", "jaeger", "prometheus", "alertmanager")
    workdir = tmp_path / "run"
    up = cli("up", "--free-ports", "--workdir", str(workdir), "--scrape-interval", "2s")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((workdir / "state.json").read_text())
        assert set(state) == {"collector", "jaeger", "prometheus", "alertmanager"}
        assert "otlp_endpoint=" in up.stdout

        # The demo command it prints reaches the collector as printed.
        (demo_line,) = [line for line in up.stdout.splitlines() if line.startswith("demo: ")]
        demo_args = demo_line.removeprefix("demo: voice-otel ").split()
        demo = voice_otel(*demo_args, "--turns", "1", cwd=tmp_path)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "OTLP grpc to" in demo.stdout
        assert "dropped" not in demo.stderr, demo.stderr

        # So does the alerts command it prints, to its Alertmanager.
        (alerts_line,) = [line for line in up.stdout.splitlines() if line.startswith("alerts: ")]
        assert state["alertmanager"]["url"] in alerts_line
        alerts = voice_otel(*alerts_line.removeprefix("alerts: voice-otel ").split())
        assert alerts.returncode == 0, alerts.stdout + alerts.stderr
        assert "alert" in alerts.stdout

        for entry in state.values():
            assert httpx.get(entry["ready_url"], timeout=5).status_code == 200

        # Alertmanager reads its webhook token from the workdir, not from /etc.
        rendered = (workdir / "alertmanager.yml").read_text()
        assert f"credentials_file: {workdir / 'webhook-token'}" in rendered
        assert "credentials_file: /etc/" not in rendered
        assert (workdir / "webhook-token").read_text().strip()

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
    again = cli("down", "--workdir", str(workdir))
    assert again.returncode == 0
    assert "nothing to stop" in again.stdout


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_stack_down_stops_what_a_cut_short_state_file_still_names(tmp_path: Path) -> None:
    require("collector", "jaeger", "prometheus")
    workdir = tmp_path / "run"
    path = workdir / "state.json"
    up = cli("up", "--free-ports", "--no-alertmanager", "--workdir", str(workdir))
    state = json.loads(path.read_text()) if path.exists() else {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert list(state)[-1] == "prometheus"
        # Cut short in the last program's entry, before its path: only its pid is legible.
        text = path.read_text()
        path.write_text(text[: text.rindex('"argv"')])

        status = cli("status", "--workdir", str(workdir))
        assert status.returncode == 1
        assert f"{path} is not valid JSON" in status.stderr
        assert all(str(entry["pid"]) in status.stderr for entry in state.values())

        down = cli("down", "--workdir", str(workdir))
        assert down.returncode == 0, down.stdout + down.stderr
        assert "is not valid JSON" in down.stderr
        for entry in state.values():
            # Prometheus is known by its command line, which points into the workdir.
            program = Path(entry["argv"][0]).name
            assert f"{program}: stopped (pid {entry['pid']})" in down.stdout, down.stdout
            assert not _runs(entry)
        assert not path.exists()
    finally:
        for entry in state.values():
            if _runs(entry):
                os.kill(entry["pid"], signal.SIGKILL)


def _runs(entry: dict[str, Any]) -> bool:
    """Whether the program of a state entry still runs (not exited, not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return cmdline[0].decode() == entry["argv"][0]


def test_stack_up_restarts_a_killed_collector_on_its_ports_with_custom_rules(
    tmp_path: Path,
) -> None:
    require("collector", "jaeger", "prometheus")
    rules = tmp_path / "rules"
    rendered = voice_otel("rules", "render", "--objective", "1.5", "--out", str(rules))
    assert rendered.returncode == 0, rendered.stderr
    workdir = tmp_path / "run"
    args = ("--free-ports", "--no-alertmanager", "--workdir", str(workdir))
    up = cli("up", *args, "--scrape-interval", "2s", "--rules-dir", str(rules))
    path = workdir / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    restarted: dict[str, Any] = {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr

        # Prometheus loaded the rendered rules, not the shipped ones.
        prometheus = state["prometheus"]["url"]
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert groups and {Path(g["file"]).parent for g in groups} == {rules.resolve()}

        collector = state["collector"]
        os.kill(collector["pid"], signal.SIGKILL)
        eventually(lambda: not _runs(collector), timeout=10, what="the collector to die")
        assert cli("status", "--workdir", str(workdir)).returncode == 1

        again = cli("up", *args)
        restarted = json.loads(path.read_text())
        assert again.returncode == 0, again.stdout + again.stderr
        assert "collector: restarted" in again.stdout
        assert "not applied" in again.stderr  # --free-ports: the ports stay as they were
        for name in ("jaeger", "prometheus"):
            assert f"{name}: restarted" not in again.stdout
            assert restarted[name]["pid"] == state[name]["pid"]
        assert restarted["collector"]["pid"] != collector["pid"]
        assert restarted["collector"]["otlp_grpc"] == collector["otlp_grpc"]

        # The same OTLP endpoints answer again, and everything is ready.
        traces = httpx.post(
            f"{collector['otlp_http']}/v1/traces",
            json={"resourceSpans": []},
            timeout=5,
        )
        assert traces.status_code == 200, traces.text
        port = int(collector["otlp_grpc"].rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        status = cli("status", "--workdir", str(workdir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "NO" not in status.stdout

        third = cli("up", *args)
        assert third.returncode != 0 and "already up" in third.stderr
    finally:
        down = cli("down", "--workdir", str(workdir))
        for entry in [*state.values(), *restarted.values()]:
            if _runs(entry):
                os.kill(entry["pid"], signal.SIGKILL)
    assert down.returncode == 0, down.stdout + down.stderr
