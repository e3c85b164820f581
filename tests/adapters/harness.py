"""Running the adapter checks in the adapters venv, from the project's own test run.

Pipecat and LiveKit are not installed in the project's environment (their dependency pins
could break it). ``scripts/adapters-venv`` builds, or reuses, a venv with the pinned frameworks
and this checkout; the checks in this directory run there as a pytest subprocess. When the venv
cannot be built the calling test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_SCRIPT = REPO / "scripts" / "adapters-venv"
BUILD_TIMEOUT = 1800.0  # a cold install downloads a few hundred MB of wheels


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test, or fail it under CI, where every component must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"adapters venv unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"adapters venv unavailable: {reason}")


def adapters_python() -> Path:
    """The adapters venv's interpreter, built or reused by ``scripts/adapters-venv``."""
    try:
        proc = subprocess.run(
            [str(VENV_SCRIPT)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"{VENV_SCRIPT.name} did not finish: {exc}")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        unavailable(f"{VENV_SCRIPT.name} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    python = Path(lines[-1])
    if not python.is_file():
        unavailable(f"{VENV_SCRIPT.name} printed no interpreter: {proc.stdout[-500:]}")
    return python


def run_checks(python: Path, checks: str, rig: str, timeout: float = 600.0) -> str:
    """Run ``tests/adapters/<checks>`` in the venv; fail with its report unless all passed.

    Returns:
        The pytest summary line (for example ``3 passed in 17.8s``).
    """
    command = [
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(HERE / "checks.ini"),
        "--rootdir",
        str(REPO),
        "--confcutdir",
        str(REPO),
        "-p",
        "preload",
        "-o",
        f"preload={rig}",
        "-q",
        "--tb=short",
        str(HERE / checks),
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else ""
        pytest.fail(f"{checks} did not finish in {timeout:.0f}s:\n{output[-6000:]}")
    report = f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, f"{checks} failed in the adapters venv:\n{report}"
    assert re.search(r"\d+ passed", summary), f"{checks} ran no test:\n{report}"
    assert not re.search(r"skipped|xfailed|xpassed|deselected", summary), report
    return summary
