"""``voice-otel stack up|down|status``: the bundled stack as background processes.

``up`` starts Jaeger, the collector, Prometheus and (unless ``--no-alertmanager``) Alertmanager
on 127.0.0.1 with the shipped configs and leaves them running; their pids, URLs, logs and
command lines are kept in ``<workdir>/state.json`` for ``status``, ``down`` and for ``up`` to
restart a program that died with the ports it had.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import click
import httpx
import yaml
from rich.console import Console
from rich.table import Table

from voice_otel._cli_types import Seconds
from voice_otel.stack._binaries import BinaryNotFound, cache_dir
from voice_otel.stack._components import duration_seconds
from voice_otel.stack._local import LocalStack
from voice_otel.stack._process import ManagedProcess, StackStartError
from voice_otel.stack._state import STATE_FILE, StateUnreadable, read_state, write_state

__all__ = ["stack_command"]


class _Duration(click.ParamType):
    """A duration Prometheus and the collector both read (``500ms``, ``1m30s``), checked first."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            duration_seconds(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


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
    help="Prometheus scrape and rule evaluation interval, e.g. 5s, 500ms, 1m30s.",
)
@click.option(
    "--rules-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Load the *.yml rule files in DIR (`voice-otel rules render --out DIR`) instead of "
    "the shipped ones.",
)
@click.option(
    "--rule-file",
    "rule_files",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    multiple=True,
    help="Load this rule file instead of the shipped ones (repeatable; adds to --rules-dir).",
)
@click.pass_context
def up_command(
    ctx: click.Context,
    workdir: Path | None,
    alertmanager: bool,
    free_ports: bool,
    scrape_interval: str,
    rules_dir: Path | None,
    rule_files: tuple[Path, ...],
) -> None:
    """Start the stack in the background and print its endpoints.

    On a workdir whose stack is partly down (a program died or was killed), start again only
    the programs that are not running, with the command lines and ports they had.
    """
    workdir = workdir or _default_workdir()
    rules = _rule_files(rules_dir, rule_files)
    state = _read_state(workdir)
    running = {name: _alive(entry.get("pid"), entry.get("argv")) for name, entry in state.items()}
    if running and all(running.values()):
        raise click.ClickException(f"the stack in {workdir} is already up: `voice-otel stack down`")
    if any(running.values()):
        _restart(ctx, workdir, state, [name for name, alive in running.items() if not alive])
        return

    try:
        stack = LocalStack(
            workdir,
            scrape_interval=scrape_interval,
            rule_files=rules,
            alertmanager=alertmanager,
            default_ports=not free_ports,
            detach=True,
        )
        stack.start()
    except (BinaryNotFound, StackStartError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc

    info = stack.describe()
    write_state(workdir, info)
    _print_table(info, {name: (True, True) for name in info})
    _print_usage(info)


def _rule_files(rules_dir: Path | None, rule_files: tuple[Path, ...]) -> list[Path] | None:
    """The rule files ``--rules-dir`` and ``--rule-file`` name, each checked to be rule YAML.

    ``None`` (neither option given) loads the shipped rules. Checked here, before anything
    starts, so a typo is one line and not a Prometheus that exits after the others started.
    """
    if rules_dir is None and not rule_files:
        return None
    files = list(rule_files)
    if rules_dir is not None:
        found = sorted(rules_dir.glob("*.yml")) + sorted(rules_dir.glob("*.yaml"))
        if not found:
            raise click.BadParameter(
                f"no *.yml files in {rules_dir} (write them with "
                f"`voice-otel rules render --out {rules_dir}`)",
                param_hint="--rules-dir",
            )
        files = found + files
    for path in files:
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise click.BadParameter(f"{path}: {reason}", param_hint="rule file") from exc
        if not isinstance(content, dict) or not isinstance(content.get("groups"), list):
            raise click.BadParameter(
                f"{path} is not a Prometheus rule file (no `groups:` list)",
                param_hint="rule file",
            )
    return files


# A backend starts before what feeds it, as in LocalStack.start.
_START_ORDER = ("jaeger", "collector", "alertmanager", "prometheus")


def _restart(
    ctx: click.Context, workdir: Path, state: dict[str, dict[str, Any]], names: list[str]
) -> None:
    """Start the programs ``names`` of a partly running stack again, as state.json has them."""
    options = {"alertmanager": "--[no-]alertmanager", "free_ports": "--free-ports",
               "scrape_interval": "--scrape-interval", "rules_dir": "--rules-dir",
               "rule_files": "--rule-file"}  # fmt: skip
    ignored = [
        option
        for param, option in options.items()
        if ctx.get_parameter_source(param) is click.core.ParameterSource.COMMANDLINE
    ]
    if ignored:
        click.echo(
            f"note: {', '.join(ignored)} not applied: the stack in {workdir} is partly up, so "
            "its stopped programs start again as they were (`voice-otel stack down` first to "
            "change them)",
            err=True,
        )

    names = sorted(names, key=lambda n: _START_ORDER.index(n) if n in _START_ORDER else 99)
    unknown = [n for n in names if not state[n].get("argv") or state[n].get("env") is None]
    if unknown:
        raise click.ClickException(
            f"{', '.join(unknown)} not running, and {workdir / STATE_FILE} does not record how "
            "to start it again (written by an older voice-otel): `voice-otel stack down`, then "
            "`voice-otel stack up`"
        )

    for name in names:
        entry = state[name]
        proc = ManagedProcess(
            name,
            entry["argv"],
            log_path=Path(entry.get("log") or workdir / f"{name}.log"),
            env=entry["env"],
            ready_url=entry.get("ready_url"),
        )
        try:
            proc.start(detach=True)
        except (OSError, StackStartError) as exc:
            write_state(workdir, state)  # the programs restarted so far keep their new pids
            raise click.ClickException(f"could not restart {name}: {exc}") from exc
        entry["pid"] = proc.pid
        click.echo(f"{name}: restarted (pid {proc.pid}) with the ports it had")

    write_state(workdir, state)
    health = {
        name: (_alive(entry.get("pid"), entry.get("argv")), _ready(entry.get("ready_url")))
        for name, entry in state.items()
    }
    _print_table(state, health)
    _print_usage(state)


def _print_usage(info: dict[str, dict[str, Any]]) -> None:
    """Ready-made command lines for the SDK, the demo and the alerts CLI."""
    otlp = info.get("collector", {}).get("otlp_grpc")
    if otlp:
        click.echo(f"SDK: voice_otel.configure(otlp_endpoint={otlp!r}, otlp_protocol='grpc')")
        click.echo(f"demo: voice-otel demo --otlp-endpoint {otlp} --otlp-protocol grpc")
    alertmanager = info.get("alertmanager", {}).get("url")
    if alertmanager:
        click.echo(f"alerts: voice-otel alerts list --alertmanager-url {alertmanager}")
        click.echo(f"  (or: export VOICE_OTEL_ALERTMANAGER_URL={alertmanager})")


@stack_command.command("status")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None)
def status_command(workdir: Path | None) -> None:
    """Show whether each program is running and ready. Exit status 1 if one is not."""
    given = workdir is not None
    workdir = workdir or _default_workdir()
    state = _read_state(workdir)
    if not state:
        raise click.ClickException(
            f"no stack started from {workdir}: `voice-otel stack up`{_workdir_hint(given)}"
        )
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
    type=Seconds(min=0.0),
    default=10.0,
    show_default=True,
    help="Seconds before SIGKILL.",
)
def down_command(workdir: Path | None, grace: float) -> None:
    """Stop the programs `stack up` started (SIGTERM, then SIGKILL after --grace)."""
    given = workdir is not None
    workdir = workdir or _default_workdir()
    try:
        state = read_state(workdir)
    except StateUnreadable as exc:
        _down_from_damaged_state(exc, workdir, grace)
        return
    if not state:
        click.echo(f"nothing to stop: no stack started from {workdir}{_workdir_hint(given)}")
        return
    # The collector first, so it flushes to Jaeger before Jaeger goes.
    order = sorted(state, key=lambda name: (name != "collector", name))
    for name in order:
        entry = state[name]
        _stop(name, entry.get("pid"), entry.get("argv"), grace)
    (workdir / STATE_FILE).unlink(missing_ok=True)


def _workdir_hint(given: bool) -> str:
    if given:
        return " (is it the --workdir `stack up` was given?)"
    return "; a stack started with `stack up --workdir DIR` needs `--workdir DIR` here too"


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
            if key not in ("pid", "ready_url", "log", "argv", "env")
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
