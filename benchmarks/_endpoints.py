"""Where the benchmarks send OTLP: the real collector, a local sink, or endpoints that fail.

- :func:`collector_up` starts the collector built by ``scripts/build-stack`` (with Jaeger, via
  :mod:`voice_otel.stack`) when it is there; otherwise a local OTLP/gRPC sink (``_sink.py``, run
  as its own process) that accepts and counts spans. Both report accepted spans as
  ``otelcol_receiver_accepted_spans`` on a metrics port.
- :func:`closed_port` is a loopback port nothing listens on (connection refused).
- :class:`Blackhole` is a loopback port that accepts connections and never answers.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def closed_port() -> str:
    """An OTLP endpoint where nothing listens: every connection is refused."""
    return f"http://{LOOPBACK}:{free_port()}"


class Blackhole:
    """A listening socket that never accepts: connections complete, no byte ever comes back."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(1024)
        self.endpoint = f"http://{LOOPBACK}:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._sock.close()


@dataclass
class Receiver:
    """An OTLP/gRPC endpoint and where to read how many spans it accepted."""

    kind: str  # "collector" or "local sink"
    endpoint: str  # OTLP/gRPC
    http_endpoint: str  # OTLP/HTTP
    metrics_url: str
    pid: int | None
    version: str = ""

    def _sum(self, *names: str) -> int:
        """Sum of the collector's own counters ``names`` over all their series."""
        text = httpx.get(self.metrics_url, timeout=5.0).text
        total = 0.0
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in names or name.removesuffix("_total") in names:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def accepted_spans(self) -> int:
        return self._sum("otelcol_receiver_accepted_spans")

    def refused_spans(self) -> int:
        return self._sum("otelcol_receiver_refused_spans", "otelcol_receiver_failed_spans")

    def sent_spans(self) -> int | None:
        """Spans the collector exported on (to Jaeger); None for the local sink."""
        return self._sum("otelcol_exporter_sent_spans") if self.kind == "collector" else None


def _collector_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"version\s+(\S+)", out)
    return match.group(1) if match else out.strip()


@contextlib.contextmanager
def collector_up(prefer_collector: bool = True) -> Iterator[Receiver]:
    """The real collector (and Jaeger) when built, else the local sink."""
    stack: Any = None
    if prefer_collector:
        try:
            from voice_otel.stack import LocalStack, find

            binary = find("collector")
            find("jaeger")
        except Exception:
            stack = None
        else:
            workdir = Path(tempfile.mkdtemp(prefix="voice-otel-bench-"))
            stack = LocalStack(workdir, prometheus=False)
    if stack is not None:
        with stack:
            collector = stack.collector
            yield Receiver(
                "collector",
                collector.otlp_grpc_endpoint,
                collector.otlp_http_endpoint,
                f"http://{collector.telemetry_target}/metrics",
                collector.pid,
                _collector_version(binary),
            )
        return
    with local_sink() as receiver:
        yield receiver


@contextlib.contextmanager
def local_sink() -> Iterator[Receiver]:
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_sink.py"), str(grpc_port), str(http_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"the local OTLP sink did not start: {line!r}")
        yield Receiver(
            "local sink",
            f"http://{LOOPBACK}:{grpc_port}",
            f"http://{LOOPBACK}:{http_port}",
            f"http://{LOOPBACK}:{http_port}/metrics",
            proc.pid,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
