"""``voice-otel stack up|down|status``: the bundled stack as background processes.

``up`` starts Jaeger, the collector, Prometheus and (unless ``--no-alertmanager``) Alertmanager
on 127.0.0.1 with the shipped configs and leaves them running; their pids, URLs and logs are
kept in ``<workdir>/state.json`` for ``status`` and ``down``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from voice_otel.stack._binaries import BinaryNotFound, cache_dir
from voice_otel.stack._components import duration_seconds
from voice_otel.stack._local import LocalStack
from voice_otel.stack._process import StackStartError
from voice_otel.stack._state import STATE_FILE, StateUnreadable, read_state

__all__ = ["stack_command"]


class _Duration(click.ParamType):
    """A Prometheus duration (``15s``, ``500ms``, ``1m``), checked before anything starts."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            duration_seconds(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds")
    return value


def _default_workdir() -> Path:
    return cache_dir() / "run"


def _read_state(workdir: Path) -> dict[str, dict[str, Any]]:
    """The state file of ``workdir``; a damaged one is a one-line error that says what to do."""
    try:
        return read_state(workdir)
    except StateUnreadable as exc:
        raise click.ClickException(_unreadable(exc, workdir)) from exc


def _unreadable(exc: StateUnreadable, workdir: Path) -> str:
    if not exc.programs:
        return (
            f"{exc.path} is {exc.reason}; no pids are legible in it: if the stack's programs "
            "still run, stop them by hand (otelcol-voice, jaeger, prometheus, alertmanager), "
            "then delete the file"
        )
    pids = ", ".join(str(pid) for pid, _ in exc.programs)
    label = "pid" if len(exc.programs) == 1 else "pids"
    return (
        f"{exc.path} is {exc.reason}; the stack's programs may still run ({label} {pids}): "
        f"`voice-otel stack down --workdir {workdir}` stops those it can identify; "
        "stop any others by hand"
    )


def _cmdline(pid: int) -> list[str]:
    """The running command line of ``pid``; empty when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")] if raw else []


def _alive(pid: int | None, argv: list[str] | None) -> bool:
    """Whether ``pid`` is still the program we started (not a recycled pid)."""
    if not pid or not argv:
        return False
    cmdline = _cmdline(pid)
    return bool(cmdline) and cmdline[0] == argv[0]


def _names_workdir(cmdline: list[str], workdir: Path) -> bool:
    """Whether a command line points into ``workdir`` (Prometheus and Alertmanager do)."""
    prefixes = {f"{workdir}/", f"{workdir.absolute()}/"}
    return any(prefix in arg for arg in cmdline[1:] for prefix in prefixes)


def _ready(url: str | None) -> bool:
    if not url:
        return False
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@click.group("stack")
def stack_command() -> None:
    """Run the bundled stack (collector, Jaeger, Prometheus, Alertmanager) on this machine.

    Needs the programs: `scripts/build-stack` builds the collector and Jaeger,
    `scripts/install-system-deps` installs Prometheus and Alertmanager.
    """


@stack_command.command("up")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Logs, data and state (default: $VOICE_OTEL_CACHE/run).",
)
@click.option("--alertmanager/--no-alertmanager", default=True, help="Also run Alertmanager.")
@click.option(
    "--free-ports",
    is_flag=True,
    help="Pick free ports instead of the defaults (4317, 16686, 9090, ...).",
)
@click.option(
    "--scrape-interval",
    type=_Duration(),
    default="15s",
    show_default=True,
    help="Prometheus scrape and rule evaluation interval, e.g. 5s, 500ms, 1m.",
)
def up_command(
    workdir: Path | None, alertmanager: bool, free_ports: bool, scrape_interval: str
) -> None:
    """Start the stack in the background and print its endpoints."""
    workdir = workdir or _default_workdir()
    state = _read_state(workdir)
    if any(_alive(entry.get("pid"), entry.get("argv")) for entry in state.values()):
        raise click.ClickException(f"the stack in {workdir} is already up: `voice-otel stack down`")

    try:
        stack = LocalStack(
            workdir,
            scrape_interval=scrape_interval,
            alertmanager=alertmanager,
            default_ports=not free_ports,
            detach=True,
        )
        stack.start()
    except (BinaryNotFound, StackStartError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc

    info = stack.describe()
    (workdir / STATE_FILE).write_text(json.dumps(info, indent=2))
    _print_table(info, {name: (True, True) for name in info})
    click.echo(
        f"SDK: voice_otel.configure(otlp_endpoint={stack.otlp_endpoint!r}, otlp_protocol='grpc')"
    )
    click.echo(f"demo: voice-otel demo --otlp-endpoint {stack.otlp_endpoint} --otlp-protocol grpc")


@stack_command.command("status")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None)
def status_command(workdir: Path | None) -> None:
    """Show whether each program is running and ready. Exit status 1 if one is not."""
    workdir = workdir or _default_workdir()
    state = _read_state(workdir)
    if not state:
        raise click.ClickException(f"no stack started from {workdir}: `voice-otel stack up`")
    health = {
        name: (_alive(entry.get("pid"), entry.get("argv")), _ready(entry.get("ready_url")))
        for name, entry in state.items()
    }
    _print_table(state, health)
    if not all(alive and ready for alive, ready in health.values()):
        raise SystemExit(1)


@stack_command.command("down")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    callback=_finite,
    default=10.0,
    show_default=True,
    help="Seconds before SIGKILL.",
)
def down_command(workdir: Path | None, grace: float) -> None:
    """Stop the programs `stack up` started (SIGTERM, then SIGKILL after --grace)."""
    workdir = workdir or _default_workdir()
    try:
        state = read_state(workdir)
    except StateUnreadable as exc:
        _down_from_damaged_state(exc, workdir, grace)
        return
    if not state:
        click.echo(f"nothing to stop: no stack started from {workdir}")
        return
    # The collector first, so it flushes to Jaeger before Jaeger goes.
    order = sorted(state, key=lambda name: (name != "collector", name))
    for name in order:
        entry = state[name]
        _stop(name, entry.get("pid"), entry.get("argv"), grace)
    (workdir / STATE_FILE).unlink(missing_ok=True)


def _down_from_damaged_state(exc: StateUnreadable, workdir: Path, grace: float) -> None:
    """Stop what a damaged state file still identifies; keep it if anything is left to do."""
    if not exc.programs:
        raise click.ClickException(_unreadable(exc, workdir)) from exc
    click.echo(f"warning: {exc.path} is {exc.reason}; stopping the pids legible in it", err=True)

    unknown = []
    programs = sorted(exc.programs, key=lambda p: not Path(p[1] or "").name.startswith("otelcol"))
    for pid, argv0 in programs:
        cmdline = _cmdline(pid)
        if argv0 is None and _names_workdir(cmdline, workdir):
            argv0 = cmdline[0]  # its path is lost, but it runs on this workdir's files
        if argv0 is not None:
            _stop(Path(argv0).name, pid, [argv0], grace)
        elif cmdline:
            unknown.append(str(pid))
        else:
            click.echo(f"pid {pid}: not running")

    if unknown:
        raise click.ClickException(
            f"not stopped: pid {', '.join(unknown)}, whose program is not legible in "
            f"{exc.path}, so it may be another program by now; stop it by hand if it is the "
            "stack's, then delete the file"
        )
    exc.path.unlink(missing_ok=True)
    click.echo(f"removed {exc.path}")


def _stop(name: str, pid: int | None, argv: list[str] | None, grace: float) -> None:
    if pid is None or not _alive(pid, argv):
        click.echo(f"{name}: not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid, argv) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid, argv):
        os.kill(pid, signal.SIGKILL)
        click.echo(f"{name}: killed (pid {pid})")
    else:
        click.echo(f"{name}: stopped (pid {pid})")


def _print_table(info: dict[str, dict[str, Any]], health: dict[str, tuple[bool, bool]]) -> None:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120)  # piped: Rich would assume 80 columns and cut the names
    table = Table("program", "pid", "running", "ready", "endpoints")
    for name, entry in info.items():
        alive, ready = health.get(name, (False, False))
        endpoints = "\n".join(
            f"{key}: {value}"
            for key, value in entry.items()
            if key not in ("pid", "ready_url", "log", "argv")
        )
        table.add_row(
            name,
            str(entry.get("pid")),
            "yes" if alive else "NO",
            "yes" if ready else "NO",
            endpoints,
        )
    table.columns[4].overflow = "fold"
    table.columns[4].no_wrap = True
    console.print(table)
    logs = {str(Path(entry["log"]).parent) for entry in info.values() if entry.get("log")}
    for directory in sorted(logs):
        console.print(f"logs: {directory}/<program>.log", soft_wrap=True)
