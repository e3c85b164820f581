"""``<workdir>/state.json``: what ``voice-otel stack up`` started, for ``status`` and ``down``.

The file maps each program's name to its endpoints, ``pid``, ``ready_url``, ``log``, ``argv``
and ``env`` (the ``VOICE_OTEL_*`` settings, ports among them, it was started with; see
``LocalStack.describe``), so ``up`` can restart a program that died exactly as it was. A file
that is truncated, edited or otherwise not what ``up`` wrote raises :class:`StateUnreadable`,
which still carries the pids legible in it, so ``down`` can stop those programs and the error
can name the others.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["STATE_FILE", "StateUnreadable", "read_state", "write_state"]

STATE_FILE = "state.json"

# ``"pid": 123`` and the program (argv[0]) after it, as LocalStack.describe() writes them.
_PID = re.compile(r'"pid"\s*:\s*([0-9]+)')
_ARGV0 = re.compile(r'"argv"\s*:\s*\[\s*("(?:[^"\\]|\\.)*")')


class StateUnreadable(Exception):
    """The state file exists but cannot be read as what ``stack up`` wrote.

    Attributes:
        path: the file.
        reason: why it cannot be read, in a few words.
        programs: ``(pid, argv[0])`` of each pid still legible in it; ``argv[0]`` is None when
            the program's path is not, so the pid cannot be told from a recycled one.
    """

    def __init__(self, path: Path, reason: str, programs: list[tuple[int, str | None]]) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.programs = programs


def read_state(workdir: Path) -> dict[str, dict[str, Any]]:
    """The programs ``stack up`` started from ``workdir``, ``{}`` when there is no state file.

    Raises:
        StateUnreadable: the file is not valid JSON or not shaped as ``stack up`` writes it.
        OSError: the file exists but cannot be read.
    """
    path = workdir / STATE_FILE
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return {}

    try:
        state = json.loads(text)
    except ValueError as exc:
        reason = f"not valid JSON: {exc.args[0] if exc.args else exc}"
        raise StateUnreadable(path, reason, _legible_programs(text)) from None
    if not _well_formed(state):
        reason = "not what `voice-otel stack up` writes"
        raise StateUnreadable(path, reason, _legible_programs(text))
    return dict(state)


def _well_formed(state: Any) -> bool:
    if not isinstance(state, dict):
        return False
    for entry in state.values():
        if not isinstance(entry, dict):
            return False
        pid, argv = entry.get("pid"), entry.get("argv")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            return False
        if argv is not None and not (
            isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)
        ):
            return False
        env = entry.get("env")
        if env is not None and not (
            isinstance(env, dict) and all(isinstance(value, str) for value in env.values())
        ):
            return False
    return True


def write_state(workdir: Path, state: dict[str, dict[str, Any]]) -> None:
    """Replace ``workdir``'s state file at once, so a crash leaves the old file or the new one."""
    path = workdir / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.partial")
    partial.write_text(json.dumps(state, indent=2))
    os.replace(partial, path)


def _legible_programs(text: str) -> list[tuple[int, str | None]]:
    """``(pid, argv[0] or None)`` for every ``"pid"`` still legible in a damaged state file."""
    found = list(_PID.finditer(text))
    programs: list[tuple[int, str | None]] = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        argv0 = None
        if (program := _ARGV0.search(text, match.end(), end)) is not None:
            try:
                argv0 = str(json.loads(program.group(1))) or None
            except ValueError:
                argv0 = None
        programs.append((int(match.group(1)), argv0))
    return programs
