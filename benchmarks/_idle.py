"""Idle cost: what ``configure()`` with the health monitor and system metrics costs doing nothing.

Processes start together and sleep through the same window: a bare interpreter; one that
imports voice_otel and its health module and does nothing else (the baseline of the budget:
what is left once the application imported the package); and one per export setup that calls
``configure()`` (the embedded default, OTLP/HTTP, OTLP/gRPC), starts a
:class:`~voice_otel.health.HealthMonitor` with the orchestrator check and a TCP check of the
collector at default intervals, and enables the system metrics. Each reports its own CPU time
over the window (all threads) and its resident set at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _endpoints import HERE, collector_up
from _harness import Row, fmt_bytes

SETTLE = 5.0  # seconds after start-up before the window opens
SETUPS = {
    "embedded": "configure() embedded default (/metrics + JSON file)",
    "otlp-http": "configure(otlp_endpoint=...) OTLP/HTTP",
    "otlp-grpc": "configure(otlp_endpoint=...) OTLP/gRPC",
}


def child(mode: str, grpc_endpoint: str, http_endpoint: str, window: float) -> None:
    import psutil

    if mode != "bare":
        import voice_otel
        import voice_otel.health as health

    if mode in SETUPS:
        endpoint = {"otlp-http": http_endpoint, "otlp-grpc": grpc_endpoint}.get(mode)
        if endpoint is None:
            folder = Path(tempfile.mkdtemp(prefix="voice-otel-idle-"))
            voice_otel.configure(
                service_name="bench-idle", prometheus_port=0, json_path=folder / "t.jsonl"
            )
        else:
            voice_otel.configure(
                service_name="bench-idle",
                otlp_endpoint=endpoint,
                otlp_protocol="grpc" if mode == "otlp-grpc" else "http/protobuf",
                prometheus_port=False,
                json_path=False,
            )
        monitor = health.HealthMonitor()
        monitor.add_orchestrator()
        parts = urlsplit(grpc_endpoint)
        monitor.add_tcp("collector", parts.hostname or "127.0.0.1", parts.port or 4317)
        monitor.start()
        health.enable_system_metrics()
    process = psutil.Process()
    time.sleep(SETTLE)
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(window)
    cpu1, wall1 = time.process_time(), time.monotonic()
    result = {
        "cpu": cpu1 - cpu0,
        "wall": wall1 - wall0,
        "rss": process.memory_info().rss,
        "threads": process.num_threads(),
    }
    print(json.dumps(result), flush=True)


def run(quick: bool) -> list[Row]:
    window = 10.0 if quick else 30.0
    with collector_up() as receiver:
        http_endpoint = receiver.http_endpoint
        modes = ("bare", "imported", *SETUPS)
        procs = {
            mode: subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "_idle.py"),
                    mode,
                    receiver.endpoint,
                    http_endpoint,
                    str(window),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for mode in modes
        }
        results: dict[str, dict[str, Any]] = {}
        for mode, proc in procs.items():
            out, _ = proc.communicate(timeout=window + 120)
            results[mode] = json.loads(out.strip().splitlines()[-1])

    section = f"idle ({window:.0f} s window, {receiver.kind})"
    base = results["imported"]
    rows = []
    for mode, label in SETUPS.items():
        r = results[mode]
        share = (r["cpu"] / r["wall"] - base["cpu"] / base["wall"]) * 100
        added = r["rss"] - base["rss"]
        rows.append(
            Row(
                section,
                f"CPU added: {label} + health monitor + system metrics",
                f"{share:.2f} % of one core ({r['cpu']:.3f} s CPU in {r['wall']:.0f} s)",
                "< 1 % of a core",
                share < 1.0,
            )
        )
        rows.append(
            Row(
                section,
                f"resident memory added: {label} + health monitor + system metrics",
                f"+{fmt_bytes(added)} ({r['threads']} threads)",
                "< 15 MB",
                added < 15 * 1000 * 1000,
            )
        )
    bare = results["bare"]
    rows.append(
        Row(
            section,
            "import voice_otel, voice_otel.health (vs a bare interpreter; not in the budget)",
            f"+{fmt_bytes(base['rss'] - bare['rss'])} resident",
        )
    )
    return rows


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
