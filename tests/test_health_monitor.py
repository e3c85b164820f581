"""HealthMonitor: checks in the background, timeouts, gauges, live pipeline health."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import http.server
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import voice_otel
from voice_otel import _runtime
from voice_otel._contract import Attr, Metrics
from voice_otel.health import CheckFailed, HealthMonitor, HealthState, PipelineHealth, Thresholds

H, D, U = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY
STATUS = Metrics.HEALTH_STATUS.name


def eventually(predicate: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a generous bound against a hung test, not a timing)."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def gauge(otel: Any, metric: str, component: str) -> float:
    return float(otel.point(metric, {Attr.COMPONENT: component}).value)


@pytest.fixture
def monitor() -> Iterator[HealthMonitor]:
    m = HealthMonitor(interval=0.05, timeout=2.0)
    yield m
    m.stop()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that hanging checks wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Status]]]:
    handler = type("Handler", (_Status,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/status", handler
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sync_and_async_checks_report_healthy_gauges(otel: Any, monitor: HealthMonitor) -> None:
    async def async_ok() -> None:
        await asyncio.sleep(0)

    monitor.add_check("sync", lambda: None, kind="custom")
    monitor.add_check("async", async_ok, kind="queue")
    monitor.start()
    monitor.refresh()

    assert monitor.status() is H
    assert gauge(otel, STATUS, "sync") == 2
    point = otel.point(STATUS, {Attr.COMPONENT: "async"})
    assert dict(point.attributes) == {Attr.COMPONENT: "async", Attr.COMPONENT_KIND: "queue"}
    assert gauge(otel, Metrics.HEALTH_CONSECUTIVE_FAILURES.name, "sync") == 0
    assert gauge(otel, Metrics.HEALTH_CHECK_DURATION.name, "async") >= 0
    assert 0 <= gauge(otel, Metrics.HEALTH_LAST_SUCCESS_AGE.name, "sync") < 60


def test_a_raising_check_marks_only_itself_unhealthy(otel: Any, monitor: HealthMonitor) -> None:
    dsn = "postgresql://agent:t0ps3cret@db.internal/agent"

    def broken() -> None:
        raise ConnectionError(f"could not connect to {dsn}\nTraceback (most recent call last):")

    monitor.add_check("db", broken, thresholds=Thresholds(failures_before_unhealthy=2))
    monitor.add_check("fine", lambda: True)
    monitor.start()
    monitor.refresh()
    monitor.refresh()

    db = monitor.component("db")
    assert db.state is U
    assert db.consecutive_failures >= 2
    assert db.last_error is not None
    assert db.last_error.startswith("ConnectionError: could not connect to postgresql://")
    assert "t0ps3cret" not in db.last_error and "Traceback" not in db.last_error
    assert monitor.component("fine").state is H
    assert gauge(otel, STATUS, "db") == 0
    assert gauge(otel, STATUS, "fine") == 2
    assert gauge(otel, Metrics.HEALTH_CONSECUTIVE_FAILURES.name, "db") >= 2


def test_false_result_and_check_failed_give_clean_reasons(monitor: HealthMonitor) -> None:
    async def refuses() -> None:
        raise CheckFailed("queue depth 900 above 500")

    monitor.add_check("false", lambda: False)
    monitor.add_check("refuses", refuses)
    monitor.start()
    monitor.refresh()
    assert monitor.component("false").last_error == "check returned False"
    assert monitor.component("refuses").last_error == "queue depth 900 above 500"


def test_a_hanging_async_check_times_out(monitor: HealthMonitor) -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    monitor.add_check(
        "hangs", hangs, timeout=0.2, thresholds=Thresholds(failures_before_unhealthy=1)
    )
    monitor.start()
    monitor.refresh()
    snap = monitor.component("hangs")
    assert snap.state is U
    assert snap.last_error == "timed out after 0.2s"


def test_a_hanging_sync_check_does_not_stall_the_others(
    otel: Any, monitor: HealthMonitor, release: threading.Event
) -> None:
    calls = {"fast": 0}
    entered = threading.Event()

    def hangs() -> None:
        entered.set()
        release.wait(600)  # far past its timeout

    def fast() -> None:
        calls["fast"] += 1

    monitor.add_check(
        "hangs", hangs, timeout=0.2, thresholds=Thresholds(failures_before_unhealthy=2)
    )
    monitor.add_check("fast", fast)
    monitor.start()
    assert entered.wait(20)
    seen = calls["fast"]

    eventually(lambda: calls["fast"] >= seen + 5, "the fast check kept running")
    eventually(lambda: monitor.component("hangs").state is U, "the hung check became unhealthy")
    assert monitor.component("fast").state is H
    assert gauge(otel, STATUS, "fast") == 2
    assert gauge(otel, STATUS, "hangs") == 0
    reason = monitor.component("hangs").last_error or ""
    assert reason.startswith(("timed out", "previous run still running"))


def test_a_still_running_sync_check_reports_how_long_it_has_run(
    otel: Any, monitor: HealthMonitor, release: threading.Event
) -> None:
    monitor.add_check("hangs", lambda: release.wait(600), timeout=0.2)
    monitor.start()
    eventually(
        lambda: (monitor.component("hangs").last_error or "").startswith("previous run"),
        "a round found the previous run still running",
    )
    snap = monitor.component("hangs")
    assert snap.latency is not None and snap.latency >= 0.2  # at least its timeout, never 0
    assert gauge(otel, Metrics.HEALTH_CHECK_DURATION.name, "hangs") >= 0.2


def test_gauge_callbacks_only_read_cached_results(otel: Any, release: threading.Event) -> None:
    calls = {"n": 0}

    def counted() -> None:
        calls["n"] += 1

    def hangs() -> None:
        release.wait(600)

    monitor = HealthMonitor(interval=3600, timeout=0.2)
    monitor.add_check("counted", counted)
    monitor.add_check("hangs", hangs)
    with monitor:
        eventually(lambda: monitor.component("counted").checks == 1, "the first check ran")
        eventually(lambda: monitor.component("hangs").checks == 1, "the hung check timed out")
        collector = threading.Thread(target=lambda: [otel.metrics() for _ in range(5)])
        collector.start()
        collector.join(20)
        assert not collector.is_alive(), "metric collection waited on a check"
        assert calls["n"] == 1
        assert gauge(otel, STATUS, "counted") == 2


def test_overall_status_counts_non_critical_components_as_degraded_at_most(
    monitor: HealthMonitor,
) -> None:
    one = Thresholds(failures_before_unhealthy=1)
    monitor.add_check("cache", lambda: False, critical=False, thresholds=one)
    monitor.add_check("db", lambda: None)
    monitor.start()
    monitor.refresh()
    assert monitor.component("cache").state is U
    assert monitor.status() is D

    monitor.add_check("queue", lambda: False, thresholds=one)
    monitor.refresh(["queue"])
    assert monitor.status() is U
    report = json.loads(json.dumps(monitor.report()))
    assert report["status"] == "unhealthy"
    assert [c["name"] for c in report["components"]] == ["cache", "db", "queue"]


def test_failing_pipeline_calls_degrade_a_provider_without_its_probe(otel: Any) -> None:
    monitor = HealthMonitor(interval=3600, pipeline=PipelineHealth(window=6, min_calls=3))
    monitor.add_llm_provider("openai")  # no URL: pipeline outcomes only
    fail = {"now": True}

    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def reply(text: str) -> str:
        if fail["now"]:
            raise TimeoutError("upstream timeout")
        return text.upper()

    with monitor:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                reply("hi")
        snap = monitor.component("llm:openai")
        assert snap.state is D
        assert snap.probe_state is None
        assert snap.pipeline is not None and snap.pipeline.last_error_type == "TimeoutError"
        assert gauge(otel, STATUS, "llm:openai") == 1
        assert monitor.status() is D

        fail["now"] = False
        for _ in range(6):
            assert reply("ok") == "OK"
        assert monitor.component("llm:openai").state is H
        assert gauge(otel, STATUS, "llm:openai") == 2


def test_unregistered_providers_appear_from_pipeline_calls(monitor: HealthMonitor) -> None:
    @voice_otel.tts(provider="espeak", model="en-us")
    async def speak(text: str) -> bytes:
        raise RuntimeError("engine crashed")

    async def run() -> None:
        for _ in range(5):
            with pytest.raises(RuntimeError):
                await speak("hello")

    monitor.start()
    asyncio.run(run())
    snap = monitor.component("tts:espeak")
    assert (snap.kind, snap.critical, snap.state) == ("tts", False, D)


def test_probe_and_pipeline_combine_into_the_worst(
    monitor: HealthMonitor, http_server: tuple[str, type[_Status]]
) -> None:
    url, _ = http_server
    monitor.add_stt_provider("deepgram", url)
    monitor.start()
    monitor.refresh()
    assert monitor.component("stt:deepgram").state is H

    @voice_otel.stt(provider="deepgram", model="nova-2")
    def transcribe(audio: bytes) -> str:
        raise ConnectionResetError("reset")

    for _ in range(5):
        with pytest.raises(ConnectionResetError):
            transcribe(b"\0")
    snap = monitor.component("stt:deepgram")
    assert (snap.probe_state, snap.state) == (H, D)


def test_http_checks_judge_status_codes(
    monitor: HealthMonitor, http_server: tuple[str, type[_Status]]
) -> None:
    url, handler = http_server
    monitor.add_http("api", url, thresholds=Thresholds(failures_before_unhealthy=1))
    monitor.add_llm_provider("local", url, thresholds=Thresholds(failures_before_unhealthy=1))
    monitor.start()
    monitor.refresh()
    assert monitor.component("api").state is H

    handler.status = 401  # reachable for a provider probe, not healthy for a plain HTTP check
    monitor.refresh()
    assert monitor.component("api").last_error == "HTTP 401 Unauthorized"
    assert monitor.component("api").state is U
    assert monitor.component("llm:local").state is H

    handler.status = 503
    monitor.refresh()
    assert monitor.component("llm:local").state is U
    assert monitor.component("llm:local").last_error == "HTTP 503 Service Unavailable"


def test_tcp_check_sees_open_and_closed_ports(
    monitor: HealthMonitor, http_server: tuple[str, type[_Status]]
) -> None:
    port = int(http_server[0].split(":")[2].split("/")[0])
    one = Thresholds(failures_before_unhealthy=1)
    monitor.add_tcp("open", "127.0.0.1", port)
    monitor.add_tcp("closed", "127.0.0.1", closed_port(), thresholds=one)
    monitor.start()
    monitor.refresh()
    assert monitor.component("open").state is H
    assert monitor.component("closed").state is U
    assert "ConnectionRefusedError" in (monitor.component("closed").last_error or "")


def test_livekit_is_probed_over_http(
    monitor: HealthMonitor, http_server: tuple[str, type[_Status]]
) -> None:
    ws_url = http_server[0].replace("http://", "ws://")
    monitor.add_livekit(ws_url)
    monitor.start()
    monitor.refresh()
    snap = monitor.component("livekit")
    assert (snap.kind, snap.state) == ("livekit", H)


def test_orchestrator_check_measures_the_watched_event_loop(monitor: HealthMonitor) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        monitor.add_orchestrator(
            loop=loop, timeout=0.3, thresholds=Thresholds(failures_before_unhealthy=1)
        )
        monitor.start()
        monitor.refresh()
        assert monitor.component("orchestrator").state is H

        unblock = threading.Event()
        loop.call_soon_threadsafe(unblock.wait, 30)  # synchronous code blocking the loop
        monitor.refresh()
        snap = monitor.component("orchestrator")
        assert snap.state is U
        assert snap.last_error == "timed out after 0.3s"

        unblock.set()
        monitor.refresh()
        monitor.refresh()
        assert monitor.component("orchestrator").state is H
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_orchestrator_memory_limit(monitor: HealthMonitor) -> None:
    monitor.add_orchestrator(
        max_memory_bytes=1024, thresholds=Thresholds(failures_before_unhealthy=1)
    )
    monitor.start()
    monitor.refresh()
    snap = monitor.component("orchestrator")
    assert snap.state is U
    assert "resident memory" in (snap.last_error or "")


@pytest.mark.parametrize(
    "register",
    [
        lambda m: m.add_check("bad name", lambda: None),
        lambda m: m.add_check("x", lambda: None, interval=0),
        lambda m: m.add_check("x", "not callable"),
        lambda m: m.add_http("x", "ftp://example.com"),
        lambda m: m.add_tcp("x", "127.0.0.1", 0),
        lambda m: m.add_redis("http://127.0.0.1:6379"),
        lambda m: m.add_livekit("example.com"),
        lambda m: m.add_check("x", lambda x: x),
        lambda m: m.add_http("x", "http://127.0.0.1/", healthy_status=[999]),
        lambda m: m.add_http("x", "http://127.0.0.1/", healthy_status=["200"]),
        lambda m: m.add_http("x", "http://127.0.0.1/", healthy_status=range(0, 300)),
        lambda m: m.add_http("x", "http://127.0.0.1/", healthy_status=[]),
        lambda m: m.add_llm_provider("x", "http://127.0.0.1/", healthy_status="200"),
    ],
)
def test_bad_registrations_fail_immediately(register: Callable[[HealthMonitor], None]) -> None:
    monitor = HealthMonitor()
    with pytest.raises((ValueError, TypeError)):
        register(monitor)
    assert monitor.report()["components"] == []


def test_bad_checks_and_statuses_are_named_in_the_error() -> None:
    m = HealthMonitor()
    with pytest.raises(TypeError, match=r"args: check must be callable without arguments.*'x'"):
        m.add_check("args", lambda x: x)
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        m.add_check("partial", functools.partial(lambda a, b: a, 1))
    with pytest.raises(ValueError, match="healthy_status must hold HTTP status codes 100-599"):
        m.add_http("x", "http://127.0.0.1/", healthy_status=[200, 999])
    with pytest.raises(TypeError, match="healthy_status must hold int status codes"):
        m.add_http("x", "http://127.0.0.1/", healthy_status=[200.0])


class _NoArguments:
    def __call__(self) -> bool:
        return True


def test_checks_callable_without_arguments_are_accepted() -> None:
    m = HealthMonitor()
    m.add_check("default", lambda x=1: x)
    m.add_check("varargs", lambda *args: None)
    m.add_check("partial", functools.partial(lambda a: a, 1))
    m.add_check("object", _NoArguments())
    m.add_check("builtin", max)  # no signature to inspect: accepted, judged when it runs
    m.add_http("codes", "http://127.0.0.1/", healthy_status=[200, 204, 503])
    m.add_http("range", "http://127.0.0.1/", healthy_status=range(100, 600))
    assert len(m.components()) == 7


@pytest.mark.parametrize(
    ("module", "register"),
    [
        ("redis", lambda m: m.add_redis("redis://127.0.0.1:6379/0")),
        ("psycopg", lambda m: m.add_database("postgresql://127.0.0.1/postgres")),
    ],
)
def test_a_missing_client_library_fails_at_registration_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, module: str, register: Callable[[HealthMonitor], None]
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    monitor = HealthMonitor()
    with pytest.raises(ValueError, match=r"pip install 'voice-otel\[health\]'"):
        register(monitor)
    assert monitor.report()["components"] == []


def test_duplicate_names_and_url_less_providers_without_pipeline_fail() -> None:
    m = HealthMonitor()
    m.add_check("db", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        m.add_check("db", lambda: None)
    with pytest.raises(ValueError, match="nothing to check"):
        HealthMonitor(pipeline=None).add_llm_provider("openai")


def test_lifecycle_is_idempotent_and_refresh_needs_a_running_monitor() -> None:
    m = HealthMonitor(interval=3600)
    m.add_check("x", lambda: None)
    with pytest.raises(RuntimeError, match="not running"):
        m.refresh()
    assert m.start() is m.start()
    assert m.running
    m.stop()
    m.stop()
    assert not m.running
    with m:
        m.refresh()
        assert m.component("x").checks >= 2  # the state survived the restart


def test_a_check_that_swallows_a_few_cancellations_stops_promptly() -> None:
    started = threading.Event()

    async def stubborn() -> None:
        started.set()
        for _ in range(3):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(100)

    m = HealthMonitor(interval=3600, timeout=60)
    m.add_check("stubborn", stubborn)
    m.start()
    assert started.wait(20)
    begin = time.monotonic()
    m.stop()
    assert time.monotonic() - begin < 2  # not the whole 5 s stop timeout


def test_a_check_that_ignores_cancellation_cannot_break_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()

    async def deaf() -> None:
        started.set()
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(100)

    m = HealthMonitor(interval=3600, timeout=60)
    m.add_check("deaf", deaf)
    for _ in range(3):
        started.clear()
        m.start()
        assert started.wait(20), "the check ran again after the restart"
        begin = time.monotonic()
        m.stop(timeout=0.3)
        assert time.monotonic() - begin < 3
    gc.collect()  # the abandoned checks of the closed loops

    assert "did not stop cleanly" not in caplog.text
    assert "Task was destroyed but it is pending" not in caplog.text
    assert caplog.text.count("health check deaf ignored cancellation") == 3


def test_removed_components_disappear(otel: Any, monitor: HealthMonitor) -> None:
    monitor.add_check("gone", lambda: None)
    monitor.add_check("kept", lambda: None)
    monitor.start()
    monitor.refresh()
    monitor.remove("gone")
    monitor.remove("never-existed")
    assert [c.name for c in monitor.components()] == ["kept"]
    assert otel.points(STATUS, {Attr.COMPONENT: "gone"}) == []
    with pytest.raises(KeyError):
        monitor.component("gone")


def test_gauges_follow_a_new_meter_provider(otel: Any, monitor: HealthMonitor) -> None:
    monitor.add_check("x", lambda: None)
    monitor.start()
    monitor.refresh()
    assert gauge(otel, STATUS, "x") == 2

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    _runtime.use_providers(otel.tracer_provider, provider)
    try:
        monitor.refresh()
        data = reader.get_metrics_data()
        assert data is not None
        names = [
            m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        ]
        assert STATUS in names
        assert otel.points(STATUS, {Attr.COMPONENT: "x"}) == []  # detached from the old one
    finally:
        provider.shutdown()


def test_stopped_monitors_report_no_gauges(otel: Any) -> None:
    m = HealthMonitor(interval=3600)
    m.add_check("x", lambda: None)
    with m:
        m.refresh()
        assert gauge(otel, STATUS, "x") == 2
    assert otel.points(STATUS, {Attr.COMPONENT: "x"}) == []
