"""Start, watch and stop one program of the stack on loopback.

A :class:`ManagedProcess` writes the program's output to a log file (never a pipe, so a chatty
program cannot block), waits until a readiness URL answers, and stops the program with SIGTERM
(then SIGKILL after a grace period). It can be stopped and started again with the same ports,
which the fault tests use to take the collector away mid-run.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["ManagedProcess", "StackStartError", "free_port", "wait_for_http"]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class StackStartError(RuntimeError):
    """A program of the stack exited or did not become ready in time."""


_handed_out: set[int] = set()  # ports this process already gave a program, never given twice


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now, for a program to bind later.

    Chosen below the kernel's ephemeral range, so the outgoing connections made between now
    and the program's start cannot take it, and never the same one twice in this process (the
    kernel hands a port that was just released to the next ``bind(0)``).
    """
    low, _ = _ephemeral_range()
    if low > 10000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    while True:  # no room below the ephemeral range: let the kernel choose
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for_http(
    url: str,
    timeout: float = 30.0,
    *,
    expect_status: int = 200,
    alive: ManagedProcess | None = None,
) -> None:
    """Poll ``url`` until it answers ``expect_status`` or ``timeout`` seconds pass.

    Raises:
        StackStartError: on timeout, or as soon as ``alive`` (the serving process) has exited.
    """
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if alive is not None and not alive.running:
                raise StackStartError(
                    f"{alive.name} exited with {alive.returncode} before {url} answered; "
                    f"log tail:\n{alive.log_tail()}"
                )
            try:
                response = client.get(url)
                if response.status_code == expect_status:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            time.sleep(0.2)
    tail = f"; log tail:\n{alive.log_tail()}" if alive is not None else ""
    raise StackStartError(f"{url} not ready after {timeout:.0f}s ({last_error}){tail}")


class ManagedProcess:
    """One program started with a fixed command line, logging to ``log_path``.

    Example::

        proc = ManagedProcess("prometheus", ["prometheus", "--config.file=p.yml"], log_path=log)
        proc.start(ready_url="http://127.0.0.1:9090/-/ready")
        ...
        proc.stop()
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_url: str | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env or {})
        self.cwd = cwd
        self.ready_url = ready_url
        self.ready_timeout = ready_timeout
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while started, else ``None``."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once exited, else ``None``."""
        return self._popen.poll() if self._popen is not None else None

    def start(self, *, detach: bool = False) -> None:
        """Start the program and wait until its readiness URL answers.

        Args:
            detach: run it in its own session so it outlives this Python process
                (``voice-otel stack up``); otherwise it is stopped with the stack.

        Raises:
            StackStartError: the program exited early or never became ready.
        """
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=detach,
            )
        logger.info("started %s (pid %s)", self.name, self._popen.pid)

        if self.ready_url is not None:
            try:
                wait_for_http(self.ready_url, self.ready_timeout, alive=self)
            except StackStartError:
                self.stop()
                raise

    def stop(self, grace: float = 10.0) -> int | None:
        """Send SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit status."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(grace)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs; killing it", self.name, grace)
                popen.kill()
                popen.wait(5.0)
        logger.info("stopped %s (exit %s)", self.name, popen.returncode)
        return popen.returncode

    def restart(self) -> None:
        """Stop, then start again with the same command line (and so the same ports)."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        """The whole log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])
