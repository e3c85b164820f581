"""Health checks against real Redis and PostgreSQL servers: healthy, down, recovered.

Both servers run on 127.0.0.1 with free ports from temporary directories. PostgreSQL refuses to
run as root, so under root it runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from voice_otel._contract import Attr, Metrics
from voice_otel.health import HealthMonitor, HealthState, Thresholds
from voice_otel.stack import free_port

pytestmark = pytest.mark.integration

PG_PASSWORD = "pg-secret-pw-42"
REDIS_PASSWORD = "redis-secret-pw-42"


def missing(what: str) -> None:
    message = f"{what} is not installed (scripts/install-system-deps)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def eventually(predicate: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


class Redis:
    """redis-server on a loopback port, no persistence, with a password."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--requirepass", REDIS_PASSWORD,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        eventually(self._accepts, "redis-server accepting connections", 30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True


class Postgres:
    """A throwaway PostgreSQL cluster (initdb) controlled with pg_ctl."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        bindir = Path(found[-1]).parent if found else None
        if bindir is None:
            initdb = shutil.which("initdb")
            bindir = Path(initdb).parent if initdb else None
        if bindir is None:
            missing("PostgreSQL (initdb, pg_ctl)")
        assert bindir is not None
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # Not under pytest's tmp dir: it is private to root, and the server may run as postgres.
        self.home = Path(tempfile.mkdtemp(prefix="voice-otel-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.dsn = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"
        if self.as_root:
            shutil.chown(self.home, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-locale")

    def start(self) -> None:
        options = f"-k {self.home} -p {self.port} -h 127.0.0.1 -c fsync=off"
        log = str(self.home / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
        if result.returncode != 0:
            log = self.home / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{program} failed: {result.stderr[-2000:]}\n{tail}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_server() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def status(otel: Any, component: str) -> float:
    return float(otel.point(Metrics.HEALTH_STATUS.name, {Attr.COMPONENT: component}).value)


def test_checks_follow_real_servers_down_and_back(
    otel: Any, redis_server: Redis, postgres_server: Postgres
) -> None:
    release = threading.Event()

    def hangs() -> None:
        release.wait(600)  # far past its timeout

    thresholds = Thresholds(failures_before_unhealthy=2, successes_before_healthy=2)
    monitor = HealthMonitor(interval=0.1, timeout=3.0, thresholds=thresholds)
    monitor.add_redis(redis_server.url)
    monitor.add_database(postgres_server.dsn)
    monitor.add_check("stuck", hangs, timeout=0.3, critical=False)

    def state(name: str) -> HealthState | None:
        return monitor.component(name).state

    try:
        with monitor:
            eventually(lambda: state("redis") is HealthState.HEALTHY, "redis healthy")
            eventually(lambda: state("postgres") is HealthState.HEALTHY, "postgres healthy")
            assert (status(otel, "redis"), status(otel, "postgres")) == (2, 2)
            assert (
                otel.point(Metrics.HEALTH_STATUS.name, {Attr.COMPONENT: "postgres"}).attributes[
                    Attr.COMPONENT_KIND
                ]
                == "postgres"
            )

            # The hung check fails on its own while the others keep being checked.
            eventually(lambda: state("stuck") is HealthState.UNHEALTHY, "the hung check failed")
            checks = monitor.component("redis").checks
            eventually(lambda: monitor.component("redis").checks >= checks + 3, "redis rechecked")
            assert monitor.status() is HealthState.DEGRADED

            redis_server.stop()
            postgres_server.stop()
            eventually(lambda: state("redis") is HealthState.UNHEALTHY, "redis unhealthy")
            eventually(lambda: state("postgres") is HealthState.UNHEALTHY, "postgres unhealthy")
            assert (status(otel, "redis"), status(otel, "postgres")) == (0, 0)
            assert monitor.status() is HealthState.UNHEALTHY
            for name in ("redis", "postgres"):
                snap = monitor.component(name)
                assert snap.consecutive_failures >= 2
                failures = Metrics.HEALTH_CONSECUTIVE_FAILURES.name
                assert otel.point(failures, {Attr.COMPONENT: name}).value >= 2
                reason = snap.last_error or ""
                assert reason and "Traceback" not in reason and len(reason) <= 200
                assert PG_PASSWORD not in reason and REDIS_PASSWORD not in reason

            redis_server.start()
            postgres_server.start()
            eventually(lambda: state("redis") is HealthState.HEALTHY, "redis recovered")
            eventually(lambda: state("postgres") is HealthState.HEALTHY, "postgres recovered")
            assert (status(otel, "redis"), status(otel, "postgres")) == (2, 2)
            trend = monitor.component("postgres").trend
            assert trend.success_rate is not None and 0 < trend.success_rate < 1
            assert trend.latency_p50 is not None
    finally:
        release.set()
