"""Where the stack's programs are: the cached collector and Jaeger builds, Debian's Prometheus.

``scripts/build-stack`` builds the collector and Jaeger into ``$VOICE_OTEL_CACHE/bin`` (default
``~/.cache/voice-otel/bin``). Prometheus, promtool, Alertmanager and amtool come from the system
(Debian packages ``prometheus`` and ``prometheus-alertmanager``). Each can be overridden with an
environment variable naming the executable, e.g. ``VOICE_OTEL_COLLECTOR_BIN=/opt/otelcol``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["PROGRAMS", "BinaryNotFound", "Program", "cache_dir", "config_dir", "find"]


class BinaryNotFound(RuntimeError):
    """A program the stack needs is not installed or not built."""


@dataclass(frozen=True)
class Program:
    """One program of the stack and how to get it."""

    key: str
    env_var: str
    names: tuple[str, ...]
    cached: bool
    how_to_get: str


PROGRAMS: Final[dict[str, Program]] = {
    p.key: p
    for p in (
        Program(
            "collector",
            "VOICE_OTEL_COLLECTOR_BIN",
            ("otelcol-voice",),
            True,
            "run scripts/build-stack (builds collector/builder-config.yaml)",
        ),
        Program(
            "collector-full",
            "VOICE_OTEL_COLLECTOR_FULL_BIN",
            ("otelcol-voice-full",),
            True,
            "run scripts/build-stack (builds collector/builder-config-full.yaml)",
        ),
        Program(
            "jaeger",
            "VOICE_OTEL_JAEGER_BIN",
            ("jaeger",),
            True,
            "run scripts/build-stack (builds tools/jaeger)",
        ),
        Program(
            "prometheus",
            "VOICE_OTEL_PROMETHEUS_BIN",
            ("prometheus",),
            False,
            "apt-get install prometheus (or scripts/install-system-deps)",
        ),
        Program(
            "promtool",
            "VOICE_OTEL_PROMTOOL_BIN",
            ("promtool",),
            False,
            "apt-get install prometheus (or scripts/install-system-deps)",
        ),
        Program(
            "alertmanager",
            "VOICE_OTEL_ALERTMANAGER_BIN",
            ("prometheus-alertmanager", "alertmanager"),
            False,
            "apt-get install prometheus-alertmanager (or scripts/install-system-deps)",
        ),
        Program(
            "amtool",
            "VOICE_OTEL_AMTOOL_BIN",
            ("amtool",),
            False,
            "apt-get install prometheus-alertmanager (or scripts/install-system-deps)",
        ),
    )
}


def cache_dir() -> Path:
    """The build cache: ``$VOICE_OTEL_CACHE`` or ``~/.cache/voice-otel``."""
    configured = os.environ.get("VOICE_OTEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "voice-otel"


def config_dir() -> Path:
    """The directory holding the shipped configs (``collector/`` of the source checkout).

    ``$VOICE_OTEL_CONFIG_DIR`` overrides it, for installs outside a checkout.

    Raises:
        FileNotFoundError: the directory does not exist (say where it is with the variable).
    """
    configured = os.environ.get("VOICE_OTEL_CONFIG_DIR")
    directory = (
        Path(configured) if configured else Path(__file__).resolve().parents[2] / "collector"
    )
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no stack configs in {directory}: set VOICE_OTEL_CONFIG_DIR to the collector/ "
            "directory of a voice-otel checkout"
        )
    return directory


def find(key: str) -> Path:
    """Return the executable for one program of :data:`PROGRAMS`.

    Looks at the program's environment variable, then (for built programs) the build cache,
    then ``PATH``.

    Raises:
        BinaryNotFound: with the command that installs or builds it.
    """
    program = PROGRAMS[key]
    override = os.environ.get(program.env_var)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BinaryNotFound(f"{program.env_var}={override} is not an executable file")

    if program.cached:
        for name in program.names:
            candidate = cache_dir() / "bin" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate

    for name in program.names:
        found = shutil.which(name)
        if found:
            return Path(found)

    raise BinaryNotFound(f"{key} not found ({', '.join(program.names)}): {program.how_to_get}")
