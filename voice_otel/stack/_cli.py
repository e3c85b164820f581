"""``voice-otel stack up|down|status``: the bundled stack as background processes.

``up`` starts Jaeger, the collector, Prometheus and (unless ``--no-alertmanager``) Alertmanager
on 127.0.0.1 with the shipped configs and leaves them running; their pids, URLs and logs are
kept in ``<workdir>/state.json`` for ``status`` and ``down``.
"""

from __future__ import annotations

import json
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
from voice_otel.stack._local import LocalStack
from voice_otel.stack._process import StackStartError

__all__ = ["stack_command"]

_STATE = "state.json"


def _default_workdir() -> Path:
    return cache_dir() / "run"


def _read_state(workdir: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads((workdir / _STATE).read_text()))
    except FileNotFoundError:
        return {}


def _alive(pid: int | None, argv: list[str] | None) -> bool:
    """Whether ``pid`` is still the program we started (not a recycled pid)."""
    if not pid or not argv:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return cmdline[0].decode(errors="replace") == argv[0]


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
@click.option("--scrape-interval", default="15s", show_default=True)
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
    (workdir / _STATE).write_text(json.dumps(info, indent=2))
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
@click.option("--grace", default=10.0, show_default=True, help="Seconds before SIGKILL.")
def down_command(workdir: Path | None, grace: float) -> None:
    """Stop the programs `stack up` started (SIGTERM, then SIGKILL after --grace)."""
    workdir = workdir or _default_workdir()
    state = _read_state(workdir)
    if not state:
        click.echo(f"nothing to stop: no stack started from {workdir}")
        return
    # The collector first, so it flushes to Jaeger before Jaeger goes.
    order = sorted(state, key=lambda name: (name != "collector", name))
    for name in order:
        entry = state[name]
        pid, argv = entry.get("pid"), entry.get("argv")
        if pid is None or not _alive(pid, argv):
            click.echo(f"{name}: not running")
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid, argv) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, argv):
            os.kill(pid, signal.SIGKILL)
            click.echo(f"{name}: killed (pid {pid})")
        else:
            click.echo(f"{name}: stopped (pid {pid})")
    (workdir / _STATE).unlink(missing_ok=True)


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
