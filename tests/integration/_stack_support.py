"""Helpers for the stack integration tests: program checks, the workload process, polling.

Importable from test modules in this directory (``from _stack_support import ...``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voice_otel.stack import BinaryNotFound, CollectorProcess, JaegerProcess, find

WORKLOAD = Path(__file__).with_name("workload.py")
ROOT = Path(__file__).resolve().parents[2]


def require(*programs: str) -> None:
    """Skip (locally) or fail (CI=true) unless every program is installed or built."""
    missing = []
    for key in programs:
        try:
            find(key)
        except BinaryNotFound as exc:
            missing.append(str(exc))
    if not missing:
        return
    message = "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(f"required program missing under CI: {message}")
    pytest.skip(message)


@dataclass
class WorkloadRun:
    """The JSON lines a workload process printed, split into conversations and the rest."""

    conversations: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    @classmethod
    def parse(cls, stdout: str, returncode: int | None, stderr: str) -> WorkloadRun:
        run = cls(returncode=returncode, stderr=stderr)
        for line in stdout.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            (run.conversations if "trace_id" in item else run.other).append(item)
        return run


def workload_argv(endpoint: str, *args: str, protocol: str = "grpc") -> list[str]:
    """Command line of the workload process (tests/integration/workload.py)."""
    return [sys.executable, str(WORKLOAD), "--endpoint", endpoint, "--protocol", protocol, *args]


def run_workload(
    endpoint: str, *args: str, protocol: str = "grpc", timeout: float = 180.0
) -> WorkloadRun:
    """Run the workload to completion and return what it printed; fail on a non-zero exit."""
    proc = subprocess.run(
        workload_argv(endpoint, *args, protocol=protocol),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    run = WorkloadRun.parse(proc.stdout, proc.returncode, proc.stderr)
    assert proc.returncode == 0, f"workload exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return run


def eventually(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.5, what: str = ""
) -> Any:
    """Call ``check`` until it returns a truthy value or ``timeout`` passes; return that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or check.__name__}: {last!r}")


def dump_logs(processes: Sequence[Any]) -> str:
    return "\n\n".join(f"--- {p.name} ---\n{p.log_tail(40)}" for p in processes)


@dataclass
class GatewayStack:
    """A tail-sampling gateway and the Jaeger it exports to."""

    jaeger: JaegerProcess
    gateway: CollectorProcess
    sampling_percent: float
