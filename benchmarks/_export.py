"""Collector up, down, or accepting and never answering: per-call cost and memory over 100k spans.

Per call: three setups built exactly as ``configure(otlp_endpoint=..., max_queue_size=...,
export_timeout=...)`` builds them live in one process and take turns (``use_providers``), so
the three are timed side by side. The caller's cost is the wall time of a decorated call and the
CPU time of the calling thread; the export thread's work is not the caller's.

Memory: one fresh process per setup calls ``configure()`` for real under tracemalloc, makes
5,000 warm-up spans and then 100,000 stage spans, and reads the live Python allocations and the
resident set size ten times along the way, relative to after the warm-up. A bounded queue means
the memory stops growing once the queue is full: single readings swing by the batch in flight,
so the verdict compares the mean of the later five readings with the earlier five.
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _workload as w
from _endpoints import HERE, Blackhole, closed_port, collector_up
from _harness import Row, compare, fmt_bytes, fmt_ns, ratio
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

import voice_otel
from voice_otel import _config, _runtime, _setup

QUEUE = 2048
EXPORT_TIMEOUT = 5.0
SPANS = 100_000
READINGS = 10  # evenly spaced over the spans
TREND_BOUND = 2 * 1024 * 1024  # a leak of 40 bytes per span would exceed it over 100k spans


def settings(endpoint: str) -> _config.Settings:
    """What ``configure(otlp_endpoint=endpoint, ...)`` would resolve, defaults included."""
    kw: dict[str, Any] = {
        name: p.default for name, p in inspect.signature(voice_otel.configure).parameters.items()
    }
    kw.update(
        otlp_endpoint=endpoint,
        otlp_protocol="grpc",
        max_queue_size=QUEUE,
        export_timeout=EXPORT_TIMEOUT,
        metric_export_interval=10.0,
        handle_sigterm=False,
    )
    return _config.resolve(**kw)


class EndCounter(SpanProcessor):
    """Counts spans ended (what the SDK was asked to send)."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


def per_call(quick: bool, endpoints: dict[str, str]) -> dict[str, Any]:
    setups = {name: _setup._build(settings(url)) for name, url in endpoints.items()}

    def block_for(name: str) -> Callable[[int], None]:
        telemetry = setups[name]

        def block(n: int) -> None:
            _runtime.use_providers(telemetry.tracer_provider, telemetry.meter_provider)
            for _ in range(n):
                w.ours_call("?")

        return block

    n, reps = (2_000, 5) if quick else (10_000, 9)
    try:
        t = compare({name: block_for(name) for name in setups}, n, reps)
    finally:
        _runtime.use_providers(None, None)
        _shutdown_all(list(setups.values()))
    return {"timings": t, "calls": n * reps}


def _shutdown_all(setups: list[Any]) -> None:
    """Shut all down at once: the unreachable ones each take their export timeout."""
    threads = [threading.Thread(target=_quiet_shutdown, args=(s,), daemon=True) for s in setups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(EXPORT_TIMEOUT * 3)


def _quiet_shutdown(telemetry: Any) -> None:
    try:
        telemetry.tracer_provider.shutdown()
        telemetry.meter_provider.shutdown(timeout_millis=EXPORT_TIMEOUT * 1000)
    except Exception:
        pass


@dataclass
class Memory:
    checkpoints: list[tuple[int, int, int]]  # (spans, tracemalloc bytes, rss bytes) growth
    seconds: float
    ended: int

    @property
    def trend(self) -> float:
        """Mean live allocations of the later half of the readings minus the earlier half's.

        Single readings swing by a batch in flight (up to 512 spans being encoded or waiting
        for their export timeout); a leak shows as a difference between the halves.
        """
        traced = [c[1] for c in self.checkpoints]
        half = len(traced) // 2
        return statistics.mean(traced[-half:]) - statistics.mean(traced[:half])


def memory(endpoint: str, spans: int) -> Memory:
    """Run the memory measurement in a fresh process (see :func:`child`)."""
    out = subprocess.run(
        [sys.executable, str(HERE / "_export.py"), endpoint, str(spans)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory run for {endpoint} failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Memory([tuple(c) for c in data["checkpoints"]], data["seconds"], data["ended"])


def child(endpoint: str, spans: int) -> None:
    import psutil

    # Traced from before configure(): the spans waiting in the queue are counted from the start,
    # so a full queue whose spans are replaced by newer ones shows no growth, and a leak does.
    tracemalloc.start()
    telemetry = voice_otel.configure(
        service_name="bench-export",
        otlp_endpoint=endpoint,
        otlp_protocol="grpc",
        max_queue_size=QUEUE,
        export_timeout=EXPORT_TIMEOUT,
        prometheus_port=False,
        json_path=False,
        handle_sigterm=False,
    )
    counter = EndCounter()
    telemetry.tracer_provider.add_span_processor(counter)
    process = psutil.Process()
    for _ in range(5_000):  # warm up: caches, instruments, the queue at its steady state
        w.ours_call("?")
    checkpoints = [spans * k // READINGS for k in range(1, READINGS + 1)]
    base_traced = tracemalloc.get_traced_memory()[0]
    base_rss = process.memory_info().rss
    done = 0
    rows = []
    started = time.monotonic()
    for checkpoint in checkpoints:
        for _ in range(checkpoint - done):
            w.ours_call("?")
        done = checkpoint
        traced = tracemalloc.get_traced_memory()[0] - base_traced
        rows.append((done, traced, process.memory_info().rss - base_rss))
    seconds = time.monotonic() - started
    tracemalloc.stop()
    voice_otel.shutdown(timeout=EXPORT_TIMEOUT)
    print(json.dumps({"checkpoints": rows, "seconds": seconds, "ended": counter.ended}))


def run(quick: bool) -> list[Row]:
    blackhole = Blackhole()
    rows: list[Row] = []
    try:
        with collector_up() as receiver:
            endpoints = {
                "up": receiver.endpoint,
                "down": closed_port(),
                "no answer": blackhole.endpoint,
            }
            section = f"export (collector up = {receiver.kind})"
            result = per_call(quick, endpoints)
            t = result["timings"]
            for name in ("down", "no answer"):
                r = ratio(t, name, "up", clock="wall")
                rows.append(
                    Row(
                        section,
                        f"per call, collector {name} / up (wall; calling thread's CPU)",
                        f"{r:.2f}x ({fmt_ns(t[name].wall_median)} vs "
                        f"{fmt_ns(t['up'].wall_median)}; "
                        f"{ratio(t, name, 'up', clock='thread'):.2f}x CPU)",
                        "<= 1.1x up",
                        r <= 1.1,
                    )
                )
            spans = 20_000 if quick else SPANS
            for name, url in endpoints.items():
                mem = memory(url, spans)
                rows.append(
                    Row(
                        section,
                        f"memory over {spans:,} spans, collector {name}",
                        f"{_growth(mem)}; {mem.seconds / spans * 1e6:.0f} µs/span with "
                        "tracemalloc on",
                        "bounded",
                        mem.trend < TREND_BOUND,
                    )
                )
    finally:
        blackhole.close()
    return rows


def _growth(mem: Memory) -> str:
    traced = [c[1] for c in mem.checkpoints]
    return (
        f"live allocations {fmt_bytes(min(traced))} to {fmt_bytes(max(traced))} over "
        f"{len(traced)} readings, later half - earlier half {fmt_bytes(mem.trend)}; "
        f"RSS {fmt_bytes(mem.checkpoints[-1][2])} at the end (all vs after warm-up)"
    )


if __name__ == "__main__":
    os.environ.setdefault("OTEL_PYTHON_LOG_LEVEL", "critical")
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    child(sys.argv[1], int(sys.argv[2]))
