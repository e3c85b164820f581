"""``voice-otel rules render`` and ``voice-otel alerts list|ack``."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from voice_otel._alertmanager import (
    LIFECYCLE_STATES,
    AlertmanagerClient,
    AlertmanagerError,
    lifecycle_state,
    summarize,
)
from voice_otel._cli_types import Seconds
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._promql import parse_duration
from voice_otel.alerts._render import render_rule_files
from voice_otel.alerts._rules import alert_names

DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _settings(pairs: tuple[str, ...], shortcuts: dict[str, tuple[str, object]]) -> dict[str, str]:
    """``--set`` pairs plus the shortcut options given, each setting at most once."""
    settings: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--set")
        if name in settings:
            raise click.UsageError(f"{name} is set twice (--set {name}=...); give it once")
        settings[name] = value.strip()
    for name, (option, given) in shortcuts.items():
        if given is None:
            continue
        if name in settings:
            raise click.UsageError(
                f"{name} is set twice, by {option} {given} and by --set {name}={settings[name]}; "
                "give it once"
            )
        settings[name] = str(given)
    return settings


@click.group("rules")
def rules_command() -> None:
    """Prometheus alerting and recording rules for voice agents."""


@rules_command.command("render")
@click.option("--objective", type=float, help="Voice-to-voice latency objective, seconds [1.0].")
@click.option("--target", type=float, help="Fraction of turns within the objective [0.95].")
@click.option("--runbook-base-url", help="Where docs/runbooks/ is published [docs/runbooks/].")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any AlertConfig setting, e.g. --set cost_budget_usd_per_hour=20 (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("collector/rules"),
    show_default=True,
    help="Directory to write the rule files to.",
)
@click.option("--check", is_flag=True, help="Write nothing; fail if the files in --out differ.")
def render_command(
    objective: float | None,
    target: float | None,
    runbook_base_url: str | None,
    pairs: tuple[str, ...],
    out: Path,
    check: bool,
) -> None:
    """Render the rule files (collector/rules/*.yml by default).

    Example: voice-otel rules render --objective 1.5 --target 0.99 --out /etc/prometheus/rules
    """
    settings = _settings(
        pairs,
        {
            "latency_objective_s": ("--objective", objective),
            "latency_target": ("--target", target),
            "runbook_base_url": ("--runbook-base-url", runbook_base_url),
        },
    )
    try:
        config = AlertConfig.from_settings(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    files = render_rule_files(config)
    if check:
        if not out.is_dir():
            raise click.ClickException(
                f"no rule files to check: {out} is not a directory (give --out, or run "
                "without --check to write them)"
            )
        stale = [
            name
            for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
        ]
        if stale:
            raise click.ClickException(f"out of date in {out}: {', '.join(stale)}")
        click.echo(f"{len(files)} rule files in {out} are up to date")
        return

    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out / name}")


_URL_HELP = "Alertmanager's address (env VOICE_OTEL_ALERTMANAGER_URL)."
_TIMEOUT_HELP = "Seconds per request (more than 0)."


@dataclass(frozen=True)
class _Connection:
    """The group's ``--alertmanager-url`` and ``--timeout`` (or their defaults)."""

    url: str
    timeout: float


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--alertmanager-url`` and ``--timeout`` after the subcommand too; they win over the group's.

    No envvar or default here: unset, the group's value (its option, the variable or the default)
    applies.
    """
    command = click.option(
        "--timeout",
        "sub_timeout",
        type=Seconds(min=0.0, min_open=True),
        default=None,
        help=f"{_TIMEOUT_HELP} Wins over `alerts --timeout` [5.0].",
    )(command)
    return click.option(
        "--alertmanager-url",
        "sub_url",
        default=None,
        help="Alertmanager's address; wins over `alerts --alertmanager-url` and "
        f"VOICE_OTEL_ALERTMANAGER_URL [{DEFAULT_ALERTMANAGER_URL}].",
    )(command)


def _client(ctx: click.Context, url: str | None, timeout: float | None) -> AlertmanagerClient:
    group = ctx.find_object(_Connection) or _Connection(DEFAULT_ALERTMANAGER_URL, 5.0)
    try:
        return AlertmanagerClient(url or group.url, timeout=timeout or group.timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--alertmanager-url") from exc


@click.group("alerts")
@click.option(
    "--alertmanager-url",
    envvar="VOICE_OTEL_ALERTMANAGER_URL",
    default=DEFAULT_ALERTMANAGER_URL,
    show_default=True,
    help=_URL_HELP,
)
@click.option(
    "--timeout",
    type=Seconds(min=0.0, min_open=True),
    default=5.0,
    show_default=True,
    help=_TIMEOUT_HELP,
)
@click.pass_context
def alerts_command(ctx: click.Context, alertmanager_url: str, timeout: float) -> None:
    """Alerts in Alertmanager: list them, acknowledge one with a silence.

    --alertmanager-url and --timeout go before or after the subcommand
    (`voice-otel alerts list --alertmanager-url URL`); after it, they win.
    """
    ctx.obj = _Connection(alertmanager_url, timeout)


@alerts_command.command("list")
@click.option(
    "--state",
    "states",
    type=click.Choice(LIFECYCLE_STATES),
    multiple=True,
    help="Only alerts in this lifecycle state (repeatable).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON instead: {"summary": counts by state and severity, "alerts": the alerts as '
    "Alertmanager's API returns them}.",
)
@_connection_options
@click.pass_context
def list_command(
    ctx: click.Context,
    states: tuple[str, ...],
    as_json: bool,
    sub_url: str | None,
    sub_timeout: float | None,
) -> None:
    """Show firing alerts: active, acknowledged (silenced) and suppressed (inhibited)."""
    client = _client(ctx, sub_url, sub_timeout)
    try:
        alerts = asyncio.run(client.alerts())
    except AlertmanagerError as exc:
        raise click.ClickException(str(exc)) from exc
    if states:
        alerts = [a for a in alerts if lifecycle_state(a) in states]
    if as_json:
        click.echo(json.dumps({"summary": summarize(alerts), "alerts": alerts}, indent=2))
        return
    _print_table(alerts)


@alerts_command.command("ack")
@click.argument("alertname")
@click.option("--comment", "-c", required=True, help="Why; shown with the silence.")
@click.option("--duration", "-d", default="1h", show_default=True, help="e.g. 30m, 2h, 1d.")
@click.option(
    "--match",
    "-m",
    "matches",
    multiple=True,
    metavar="LABEL=VALUE",
    help="Only alerts with this label value too, e.g. -m component=redis (repeatable).",
)
@click.option("--author", default=None, help="Who acknowledges [current user].")
@_connection_options
@click.pass_context
def ack_command(
    ctx: click.Context,
    alertname: str,
    comment: str,
    duration: str,
    matches: tuple[str, ...],
    author: str | None,
    sub_url: str | None,
    sub_timeout: float | None,
) -> None:
    """Acknowledge ALERTNAME: silence it for --duration with a comment."""
    client = _client(ctx, sub_url, sub_timeout)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from exc
    matchers = {"alertname": alertname}
    for pair in matches:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected LABEL=VALUE, got {pair!r}", param_hint="--match")
        matchers[name.strip()] = value.strip()

    try:
        silence_id = asyncio.run(
            client.silence(matchers, comment, author or getpass.getuser(), seconds)
        )
    except (AlertmanagerError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(silence_id)  # alone on stdout, for scripts
    labels = ", ".join(f"{name}={value}" for name, value in matchers.items())
    click.echo(f"silenced {labels} for {duration}", err=True)
    if alertname not in alert_names():
        click.echo(
            f"note: {alertname} is not one of the voice-otel alert rules (docs/alerts.md lists "
            "them); the silence matches it anyway",
            err=True,
        )


_COLUMN_LABELS = ("alertname", "severity", "component", "stage")


def _distinguishing_labels(alerts: list[dict[str, Any]]) -> list[str]:
    """For each alert, the labels that tell it from the others of the same name.

    Those are the labels (other than the table's own columns) whose values differ among the
    alerts that share an ``alertname``, e.g. ``instance=127.0.0.1:8888 job=otelcol`` for the
    two ``VoiceCollectorDown`` of a collector scraped by two jobs. Empty for an alert whose name
    is unique.
    """
    by_name: dict[str, list[dict[str, str]]] = {}
    for alert in alerts:
        labels = alert.get("labels") or {}
        by_name.setdefault(str(labels.get("alertname", "")), []).append(labels)

    differing: dict[str, list[str]] = {}
    for name, group in by_name.items():
        keys = sorted({key for labels in group for key in labels} - set(_COLUMN_LABELS))
        differing[name] = [key for key in keys if len({labels.get(key) for labels in group}) > 1]

    shown = []
    for alert in alerts:
        labels = alert.get("labels") or {}
        keys = differing[str(labels.get("alertname", ""))]
        shown.append(" ".join(f"{key}={labels[key]}" for key in keys if key in labels))
    return shown


def _print_table(alerts: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = summarize(alerts)
    counts = ", ".join(f"{n} {state}" for state, n in summary["by_state"].items() if n)
    total = summary["total"]
    title = f"{total} alert" if total == 1 else f"{total} alerts"
    table = Table(title=title + (f" ({counts})" if counts else ""))

    def order(alert: dict[str, Any]) -> tuple[int, str]:
        severity = alert.get("labels", {}).get("severity", "")
        return (_SEVERITY_ORDER.get(severity, 9), str(alert.get("startsAt", "")))

    alerts = sorted(alerts, key=order)
    distinguishing = _distinguishing_labels(alerts)
    columns = ["state", "severity", "alert", "component", "stage", "since", "summary"]
    if any(distinguishing):
        columns.insert(3, "labels")  # next to the alert name they tell apart
    for column in columns:
        table.add_column(column)

    for alert, extra in zip(alerts, distinguishing, strict=True):
        labels = alert.get("labels", {})
        row = [
            lifecycle_state(alert),
            labels.get("severity", ""),
            labels.get("alertname", ""),
            labels.get("component", ""),
            labels.get("stage", ""),
            str(alert.get("startsAt", ""))[:19].replace("T", " "),
            alert.get("annotations", {}).get("summary", ""),
        ]
        if "labels" in columns:
            row.insert(3, extra)
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped or captured: never clip alert names
        console = Console(width=200)
    console.print(table)
