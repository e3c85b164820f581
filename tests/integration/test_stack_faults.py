"""Faults: the collector goes away mid-run; the application is stopped with SIGTERM; Jaeger
goes away behind the collector.

They share a collector and Jaeger of their own (the session stack keeps its data for the others).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from _stack_support import eventually, require, run_workload, workload_argv

from voice_otel._contract import Metrics
from voice_otel.stack import CollectorProcess, JaegerProcess

pytestmark = pytest.mark.integration

SPANS_PER_CONVERSATION = 5  # conversation, turn, stt, llm, tts


@dataclass
class Pair:
    jaeger: JaegerProcess
    collector: CollectorProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    require("collector", "jaeger")
    workdir = tmp_path_factory.mktemp("faults")
    jaeger = JaegerProcess(workdir)
    collector = CollectorProcess(workdir, jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint)
    jaeger.start()
    try:
        collector.start()
        yield Pair(jaeger, collector)
    finally:
        collector.stop()
        jaeger.stop()


class LiveWorkload:
    """The workload process, with its JSON lines collected as they come."""

    def __init__(self, argv: list[str], stderr_path: Path) -> None:
        self.lines: list[dict[str, Any]] = []
        self._stderr = stderr_path.open("w")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self.lines.append(json.loads(line))

    @property
    def conversations(self) -> list[dict[str, Any]]:
        return [item for item in list(self.lines) if "trace_id" in item]

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        eventually(
            lambda: len(self.conversations) >= count or self.proc.poll() is not None,
            timeout=timeout,
            what=f"{count} conversations",
        )
        assert self.proc.poll() is None, f"workload exited early:\n{self.stderr()}"

    def finish(self, timeout: float = 60.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self._reader.join(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()
        return code

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")


def test_pipeline_keeps_running_while_the_collector_is_down(
    pair: Pair,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    stop_file = tmp_path / "stop"
    workload = LiveWorkload(
        workload_argv(
            pair.collector.otlp_grpc_endpoint,
            "--kinds",
            "fast,interrupted",
            "--pace",
            "0.05",
            "--stop-file",
            str(stop_file),
            "--max-seconds",
            "150",
            "--service-name",
            "voice-otel-faults",
        ),
        tmp_path / "workload.err",
    )
    try:
        workload.wait_for(10)
        pair.collector.stop()
        stopped_at = len(workload.conversations)

        # Progress while nothing listens: the instrumented calls neither raise nor wait on export.
        workload.wait_for(stopped_at + 100, timeout=90)
        pair.collector.start()
        restarted_at = len(workload.conversations)

        workload.wait_for(restarted_at + 20)
    finally:
        stop_file.touch()
        code = workload.finish()
    err = workload.stderr()
    assert code == 0, err
    assert "Traceback" not in err, err

    conversations = workload.conversations
    after_restart = conversations[restarted_at + 5 :]
    assert after_restart

    def arrived() -> bool:
        return all(pair.jaeger.get_trace(c["trace_id"]) for c in after_restart)

    eventually(arrived, timeout=90, what="traces sent after the collector restarted")

    lost = [c for c in conversations if pair.jaeger.get_trace(c["trace_id"]) is None]
    during = conversations[stopped_at:restarted_at]
    slowest = max(c["call_seconds"] for c in conversations)
    record_property("conversations", len(conversations))
    record_property("conversations_during_outage", len(during))
    record_property("traces_lost", len(lost))
    with capsys.disabled():
        print(
            f"\n[collector outage] conversations: {len(conversations)} total, "
            f"{len(during)} while the collector was down; traces lost: {len(lost)} "
            f"(~{len(lost) * SPANS_PER_CONVERSATION} spans); "
            f"slowest instrumented call: {slowest:.3f}s"
        )


def test_sigterm_flushes_pending_spans_and_metrics(pair: Pair, tmp_path: Path) -> None:
    service = "voice-otel-sigterm"
    job = f'job="{service}"'
    # A 60 s metric interval: metrics reach the collector only if shutdown flushes them.
    workload = LiveWorkload(
        workload_argv(
            pair.collector.otlp_http_endpoint,
            "--kinds",
            "fast,slow,interrupted",
            "--repeat",
            "3",
            "--objective",
            "0.2",
            "--export-interval",
            "60",
            "--hold",
            "120",
            "--service-name",
            service,
            protocol="http/protobuf",
        ),
        tmp_path / "workload.err",
    )
    try:
        eventually(
            lambda: any("holding" in item for item in workload.lines) or workload.proc.poll(),
            timeout=60,
            what="the workload to finish its conversations",
        )
        assert workload.proc.poll() is None, workload.stderr()
        assert job not in pair.collector.scrape(), "metrics exported before SIGTERM"
        workload.proc.send_signal(signal.SIGTERM)
        code = workload.finish(timeout=30)
    finally:
        if workload.proc.poll() is None:
            workload.proc.kill()

    # Ended by the signal itself (the handler flushes, then re-raises SIGTERM), not by --hold.
    assert code == -signal.SIGTERM, f"exit {code}:\n{workload.stderr()}"
    conversations = workload.conversations
    assert len(conversations) == 9

    def traces_stored() -> bool:
        return all(pair.jaeger.get_trace(c["trace_id"]) for c in conversations)

    eventually(traces_stored, timeout=60, what="every trace of the SIGTERMed process")

    turns_metric = Metrics.TURNS.prometheus_name

    def turns_exported() -> float:
        total = 0.0
        for line in pair.collector.scrape(openmetrics=False).splitlines():
            if line.startswith(f"{turns_metric}{{") and job in line:
                total += float(line.rsplit(" ", 1)[-1])
        return total

    assert eventually(turns_exported, timeout=30, what=f"{turns_metric} for {service}") == 9


def test_collector_queues_while_jaeger_is_down_and_delivers_after(pair: Pair) -> None:
    def telemetry(name: str) -> float:
        text = httpx.get(f"http://{pair.collector.telemetry_target}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[-1])
            for line in text.splitlines()
            if line.startswith(f"{name}{{") and 'exporter="otlp_grpc/jaeger"' in line
        )

    pair.jaeger.stop()
    try:
        run = run_workload(
            pair.collector.otlp_grpc_endpoint,
            "--kinds",
            "fast,interrupted",
            "--repeat",
            "5",
            "--service-name",
            "voice-otel-backend-outage",
        )
        # The batch reached the exporter's sending queue and waits there for Jaeger.
        eventually(
            lambda: telemetry("otelcol_exporter_queue_size") > 0,
            timeout=30,
            what="spans queued for Jaeger",
        )
    finally:
        pair.jaeger.start()

    def delivered() -> bool:
        return all(pair.jaeger.get_trace(c["trace_id"]) for c in run.conversations)

    eventually(delivered, timeout=90, what="queued traces delivered after Jaeger came back")
    assert telemetry("otelcol_exporter_queue_size") == 0
