"""The fault matrix: a voice pipeline under every failure its telemetry can meet.

Each scenario runs real conversations (STT call, streamed LLM reply, streamed TTS audio per turn)
while something breaks, and counts three things:

* exceptions reaching user code: must be 0;
* spans started but never ended, from a span processor that tracks ``on_start``/``on_end``:
  must be 0;
* spans lost between the SDK and where they were going: reported, and 0 where the design
  promises delivery (in-memory export, SIGTERM flush, abandoned or cancelled streams).

Every scenario prints its row (``-s`` not needed); ``docs/performance.md`` carries the table.
Network traffic goes to 127.0.0.1 only; the name-resolution scenario runs in a network
namespace of its own, so no lookup leaves the machine. Scenarios that need a fresh process
(fork, SIGTERM, name resolution) run this file as a script: ``python test_fault_matrix.py
SCENARIO ARGS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import voice_otel
from voice_otel.stack import free_port

if TYPE_CHECKING:
    from conftest import Captured
    from opentelemetry.context import Context

SPANS_PER_TURN = 4  # the turn, STT, LLM, TTS
HERE = Path(__file__).resolve()


# -- what every scenario counts --------------------------------------------------------------------


class Tally(SpanProcessor):
    """Counts spans started and ended, and keeps the ones still open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.ended = 0
        self.open: dict[int, str] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self._lock:
            self.started += 1
            self.open[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1
            if span.context is not None:
                self.open.pop(span.context.span_id, None)

    def reset(self) -> None:
        with self._lock:
            self.started = self.ended = 0
            self.open.clear()


@dataclass
class Row:
    scenario: str
    turns: int
    started: int
    ended: int
    open: int
    delivered: int
    user_exceptions: int
    note: str = ""

    @property
    def lost(self) -> int:
        return self.ended - self.delivered


def report(row: Row, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(
            f"\n[fault matrix] {row.scenario}: turns={row.turns} started={row.started} "
            f"ended={row.ended} open={row.open} delivered={row.delivered} lost={row.lost} "
            f"user_exceptions={row.user_exceptions}" + (f" ({row.note})" if row.note else "")
        )


def row_from(scenario: str, turns: int, tally: Tally, delivered: int, errors: int) -> Row:
    return Row(scenario, turns, tally.started, tally.ended, len(tally.open), delivered, errors)


# -- the pipeline ----------------------------------------------------------------------------------


@voice_otel.stt(provider="local", model="matrix-stt")
def transcribe(audio: bytes) -> str:
    return "what time is it"


@voice_otel.llm(provider="local", model="matrix-llm")
def think(text: str) -> Iterator[str]:
    yield from ("it ", "is ", "noon")


@voice_otel.tts(provider="local", model="matrix-tts")
async def speak(text: str) -> AsyncIterator[bytes]:
    for word in text.split():
        yield word.encode() * 40


async def converse(turns: int, conversation_id: str) -> int:
    """Run a conversation; returns how many exceptions reached this (user) code."""
    errors = 0
    try:
        async with voice_otel.conversation(conversation_id):
            for _ in range(turns):
                try:
                    async with voice_otel.turn() as turn:
                        turn.user_stopped_speaking()
                        text = transcribe(b"\x00" * 320)
                        answer = "".join(think(text))
                        audio = [chunk async for chunk in speak(answer)]
                        if text != "what time is it" or answer != "it is noon" or len(audio) != 3:
                            errors += 1  # a result that did not pass through unchanged
                except Exception:
                    errors += 1
    except Exception:
        errors += 1
    return errors


def run_conversations(count: int, turns: int, prefix: str) -> int:
    async def main() -> int:
        results = await asyncio.gather(*(converse(turns, f"{prefix}-{i}") for i in range(count)))
        return sum(results)

    return asyncio.run(main())


def expected_spans(conversations: int, turns: int) -> int:
    return conversations * (1 + turns * SPANS_PER_TURN)


# -- exporters and endpoints that fail -------------------------------------------------------------


class RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.calls += 1
        raise ConnectionError("exporter broke")

    def shutdown(self) -> None:
        return None


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """A loopback port that completes TCP handshakes (kernel backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


pytestmark = pytest.mark.usefixtures("lenient")  # production mode: our own faults are logged


# -- exporter raising ------------------------------------------------------------------------------


@pytest.mark.parametrize("processor", ["batch", "simple"])
def test_exporter_raising(
    otel: Captured, processor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = RaisingExporter()
    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    wrapped = (
        BatchSpanProcessor(exporter, schedule_delay_millis=50)
        if processor == "batch"
        else SimpleSpanProcessor(exporter)
    )
    otel.tracer_provider.add_span_processor(wrapped)

    errors = run_conversations(4, 5, "raising")
    wrapped.force_flush(10_000)

    delivered = len(otel.spans())  # the in-memory exporter beside the broken one
    row = row_from(f"exporter raising ({processor} processor)", 20, tally, delivered, errors)
    row.note = (
        f"the broken exporter, called {exporter.calls} times, got nothing; the in-memory "
        "exporter beside it got every span"
    )
    report(row, capsys)
    assert errors == 0
    assert tally.open == {}
    assert tally.started == tally.ended == expected_spans(4, 5)
    assert exporter.calls > 0
    assert row.lost == 0  # the working exporter beside it got everything


class BlockingExporter(SpanExporter):
    """Blocks every export until released, like a collector that stopped reading."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.release.wait(60)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_export_queue_full(otel: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    from voice_otel._batching import BatchSpanProcessor as VoiceBatchSpanProcessor

    exporter = BlockingExporter()
    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    processor = VoiceBatchSpanProcessor(
        exporter, max_queue_size=32, max_export_batch_size=8, schedule_delay_millis=10
    )
    otel.tracer_provider.add_span_processor(processor)

    errors = run_conversations(4, 5, "queue-full")
    exporter.release.set()
    processor.force_flush()
    processor.shutdown()

    row = row_from("export queue full (exporter stuck)", 20, tally, exporter.exported, errors)
    row.note = f"queue of 32; {processor.dropped} dropped and counted, the rest sent once unstuck"
    report(row, capsys)
    assert errors == 0
    assert tally.open == {}
    assert tally.ended == expected_spans(4, 5)
    assert processor.dropped > 0
    assert exporter.exported + processor.dropped == tally.ended  # every span sent or counted
    assert row.lost == processor.dropped


# -- collector down, or accepting and never answering ----------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("failure", ["down", "no answer"])
def test_collector_unreachable(
    otel: Captured, protocol: str, failure: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.ExitStack() as stack:
        if failure == "down":
            endpoint = f"http://127.0.0.1:{free_port()}"
        else:
            endpoint = stack.enter_context(blackhole())
        telemetry = voice_otel.configure(
            service_name="fault-matrix",
            otlp_endpoint=endpoint,
            otlp_protocol=protocol,
            export_timeout=1.0,
            max_queue_size=64,
            metric_export_interval=0.5,
            prometheus_port=False,
            json_path=False,
            handle_sigterm=False,
        )
        tally = Tally()
        telemetry.tracer_provider.add_span_processor(tally)

        errors = run_conversations(5, 4, "unreachable")
        flushed = voice_otel.shutdown(timeout=3.0)

    row = row_from(f"collector {failure} ({protocol})", 20, tally, 0, errors)
    row.note = f"shutdown returned (in time: {flushed}); queue bounded at 64, the rest dropped"
    report(row, capsys)
    assert errors == 0
    assert tally.open == {}
    assert tally.started == tally.ended == expected_spans(5, 4)


# -- name resolution failing -----------------------------------------------------------------------


def _netns_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_name_resolution_failing(protocol: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = [sys.executable, str(HERE), "dns", protocol]
    if _netns_available():
        # A network namespace with no route out: the lookup of nonexistent.invalid fails here,
        # without a packet leaving the machine.
        command = ["unshare", "-n", *command]
        how = "own network namespace"
    elif protocol == "grpc":
        pytest.skip("gRPC resolves names in C; without a network namespace it would query DNS")
    else:
        command.append("--patched-resolver")
        how = "resolver patched to fail"
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])

    row = Row(**data)
    row.note = how
    report(row, capsys)
    assert row.user_exceptions == 0
    assert row.open == 0
    assert row.started == row.ended == expected_spans(2, 5)


def child_dns(protocol: str, patched: bool) -> None:
    if patched:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host.endswith(".invalid"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo
    port = 4317 if protocol == "grpc" else 4318
    telemetry = voice_otel.configure(
        service_name="fault-matrix",
        otlp_endpoint=f"http://nonexistent.invalid:{port}",
        otlp_protocol=protocol,
        export_timeout=1.0,
        metric_export_interval=0.5,
        prometheus_port=False,
        json_path=False,
        handle_sigterm=False,
    )
    tally = Tally()
    telemetry.tracer_provider.add_span_processor(tally)
    errors = run_conversations(2, 5, "dns")
    voice_otel.shutdown(timeout=3.0)
    row = row_from(f"name resolution failing ({protocol})", 10, tally, 0, errors)
    print(json.dumps(asdict(row)))


# -- an observable gauge callback raising ----------------------------------------------------------


def test_observable_gauge_callback_raising(
    otel: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    calls = []

    def broken(options: Any) -> Any:
        calls.append(1)
        raise RuntimeError("gauge callback broke")

    meter = otel.meter_provider.get_meter("fault-matrix")
    meter.create_observable_gauge("matrix.broken", callbacks=[broken])

    errors = run_conversations(2, 5, "gauge")
    metrics = otel.metrics()  # a collection runs the broken callback

    row = row_from("observable gauge callback raising", 10, tally, len(otel.spans()), errors)
    report(row, capsys)
    assert errors == 0
    assert calls, "the collection did not run the callback"
    assert tally.open == {}
    assert len(otel.spans()) == tally.ended == expected_spans(2, 5)
    # The other instruments were still collected.
    assert otel.total("voice.stage.duration") == 3 * 10
    assert "voice.turns" in metrics


# -- a health check hanging ------------------------------------------------------------------------


def test_health_check_hanging(otel: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    from voice_otel.health import HealthMonitor, HealthState

    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    release = threading.Event()

    def hangs() -> None:
        release.wait(120)

    async def hangs_async() -> None:
        await asyncio.sleep(120)

    monitor = HealthMonitor(interval=0.1, timeout=0.2, meter_provider=otel.meter_provider)
    monitor.add_check("hangs", hangs)
    monitor.add_check("hangs-async", hangs_async)
    monitor.add_check("fine", lambda: True)
    monitor.start()
    try:
        errors = run_conversations(2, 5, "health")
        monitor.refresh(timeout=30)
        states = {c.name: c.state for c in monitor.components()}
        status = {
            p.attributes["voice.component"]: p.value for p in otel.points("voice.health.status")
        }  # a collection with two checks stuck still answers
    finally:
        monitor.stop(timeout=5)
        release.set()

    row = row_from("health check hanging", 10, tally, len(otel.spans()), errors)
    row.note = ", ".join(f"{n}: {states[n]}" for n in ("fine", "hangs", "hangs-async"))
    report(row, capsys)
    assert errors == 0
    assert tally.open == {}
    assert tally.ended == expected_spans(2, 5) == len(otel.spans())
    assert states["fine"] == HealthState.HEALTHY
    assert states["hangs"] != HealthState.HEALTHY
    assert states["hangs-async"] != HealthState.HEALTHY
    assert status.get("fine") == 2


# -- cancellation storms ---------------------------------------------------------------------------


@voice_otel.stt(provider="local", model="storm-stt")
async def slow_transcribe(audio: bytes) -> str:
    await asyncio.sleep(0.001)
    return "hello"


@voice_otel.llm(provider="local", model="storm-llm")
async def slow_think(text: str) -> AsyncIterator[str]:
    for token in ("one ", "two ", "three ", "four"):
        await asyncio.sleep(0.001)
        yield token


@voice_otel.tts(provider="local", model="storm-tts")
def slow_speak(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


async def storm_conversation(index: int) -> None:
    async with voice_otel.conversation(f"storm-{index}"):
        for _ in range(3):
            async with voice_otel.turn():
                text = await slow_transcribe(b"\x00")
                answer = "".join([t async for t in slow_think(text)])
                for _chunk in slow_speak(answer):
                    await asyncio.sleep(0)


def test_cancellation_storm(otel: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    rng = random.Random(7)
    tasks_n = 300

    async def main() -> tuple[int, int]:
        tasks = [asyncio.create_task(storm_conversation(i)) for i in range(tasks_n)]
        for task in tasks:
            if rng.random() < 0.7:
                asyncio.get_running_loop().call_later(rng.uniform(0, 0.02), task.cancel)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        other = sum(
            isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
            for r in results
        )
        return cancelled, other

    cancelled, errors = asyncio.run(main())

    spans = otel.spans()
    outcomes = [(s.attributes or {}).get("voice.outcome") for s in spans]
    interrupted = outcomes.count("interrupted")
    row = row_from("cancellation storm", tasks_n * 3, tally, len(spans), errors)
    row.note = f"{cancelled} of {tasks_n} conversations cancelled, {interrupted} spans interrupted"
    report(row, capsys)
    assert errors == 0
    assert cancelled > 0
    assert tally.open == {}
    assert tally.started == tally.ended == len(spans)
    assert interrupted > 0
    assert "error" not in outcomes  # a cancellation is an interruption, never an error


# -- streams abandoned and garbage-collected -------------------------------------------------------


def test_streams_abandoned(otel: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    otel.tracer_provider.add_span_processor(tally)
    streams = 200

    async def main() -> int:
        errors = 0
        for i in range(streams):
            try:
                if i % 2:
                    agen: Any = slow_think("x")
                    await agen.__anext__()  # one token, then the caller walks away
                    agen = None
                else:
                    gen: Any = think("x")
                    next(gen)
                    gen = None
            except Exception:
                errors += 1
        for _ in range(50):  # let the loop run the async-generator finalizers
            gc.collect()
            await asyncio.sleep(0)
            if tally.ended >= streams:
                break
        return errors

    errors = asyncio.run(main())
    gc.collect()

    spans = otel.spans()
    interrupted = sum(1 for s in spans if (s.attributes or {}).get("voice.interrupted"))
    row = row_from("streams abandoned, garbage-collected", 0, tally, len(spans), errors)
    row.note = f"{streams} streams dropped after one item, {interrupted} marked interrupted"
    report(row, capsys)
    assert errors == 0
    assert tally.open == {}
    assert tally.started == tally.ended == len(spans) == streams
    assert interrupted == streams


# -- a forked worker -------------------------------------------------------------------------------


def _conversation_ids(path: Path) -> dict[str, int]:
    """Spans in an OTLP-JSON lines file, counted by the conversation their trace belongs to."""
    from voice_otel._jsonfile import read_lines

    by_trace: dict[str, int] = {}
    names: dict[str, str] = {}
    for line in read_lines(path):
        for rs in line.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    trace_id = span["traceId"]
                    by_trace[trace_id] = by_trace.get(trace_id, 0) + 1
                    for attr in span.get("attributes", []):
                        if attr["key"] == "gen_ai.conversation.id":
                            names[trace_id] = attr["value"]["stringValue"].split("-")[0]
    counts: dict[str, int] = {}
    for trace_id, n in by_trace.items():
        label = names.get(trace_id, "?")
        counts[label] = counts.get(label, 0) + n
    return counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spans.jsonl"
    out = subprocess.run(
        [sys.executable, str(HERE), "fork", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    by_side = {r.pop("side"): Row(**r) for r in results}
    counts = _conversation_ids(path)

    for side, row in sorted(by_side.items()):
        row.delivered = counts.get(side, 0)
        row.note = "child: telemetry works after fork" if side == "child" else ""
        report(row, capsys)
    parent, child = by_side["parent"], by_side["child"]
    assert parent.user_exceptions == child.user_exceptions == 0
    assert parent.open == child.open == 0
    assert parent.ended == expected_spans(2, 3) * 2  # before and after the fork
    assert parent.lost == 0
    assert child.ended == expected_spans(2, 3)
    assert child.lost in (0, child.ended)  # works, or cleanly off: never a partial mess
    assert child.lost == 0  # and with the SDK's at-fork handling, it works


def child_fork(path: str) -> None:
    telemetry = voice_otel.configure(
        service_name="fault-matrix",
        json_path=path,
        prometheus_port=False,
        handle_sigterm=False,
    )
    tally = Tally()
    telemetry.tracer_provider.add_span_processor(tally)
    errors = run_conversations(2, 3, "parent")
    # A pre-fork server flushes before it forks: the queue and the file's lock are not in use.
    telemetry.tracer_provider.force_flush()

    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            tally.reset()
            child_errors = run_conversations(2, 3, "child")
            voice_otel.shutdown(timeout=10)
            row = row_from("forked worker: child", 6, tally, 0, child_errors)
            print(json.dumps({"side": "child", **asdict(row)}), flush=True)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)  # one writer to the file at a time
    errors += run_conversations(2, 3, "parent")
    voice_otel.shutdown(timeout=10)
    row = row_from("forked worker: parent", 12, tally, 0, errors)
    print(json.dumps({"side": "parent", **asdict(row)}), flush=True)
    sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)


# -- SIGTERM ---------------------------------------------------------------------------------------


def test_sigterm_flushes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spans.jsonl"
    with subprocess.Popen(
        [sys.executable, str(HERE), "sigterm", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            counts_line = proc.stdout.readline()
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    row = Row(**json.loads(counts_line))
    row.delivered = sum(_conversation_ids(path).values())
    row.note = f"exit status {proc.returncode}"
    report(row, capsys)
    assert proc.returncode == -signal.SIGTERM  # the default action still ends the process
    assert row.user_exceptions == 0
    assert row.open == 0
    assert row.ended == expected_spans(3, 5)
    assert row.lost == 0


def child_sigterm(path: str) -> None:
    telemetry = voice_otel.configure(
        service_name="fault-matrix", json_path=path, prometheus_port=False
    )
    tally = Tally()
    telemetry.tracer_provider.add_span_processor(tally)
    errors = run_conversations(3, 5, "sigterm")
    row = row_from("SIGTERM after the last turn", 15, tally, 0, errors)
    print(json.dumps(asdict(row)), flush=True)
    print("ready", flush=True)
    threading.Event().wait(60)  # until SIGTERM


if __name__ == "__main__":
    scenario, args = sys.argv[1], sys.argv[2:]
    if scenario == "dns":
        child_dns(args[0], "--patched-resolver" in args)
    elif scenario == "fork":
        child_fork(args[0])
    elif scenario == "sigterm":
        child_sigterm(args[0])
    else:
        raise SystemExit(f"unknown scenario {scenario}")
