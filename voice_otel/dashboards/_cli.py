"""``voice-otel dashboards``: export the dashboards to JSON files or import them into Grafana."""

from __future__ import annotations

from pathlib import Path

import click

from voice_otel.dashboards._catalog import dashboard_json, list_dashboards, write_dashboards
from voice_otel.dashboards._grafana import GrafanaImportError, import_dashboards

DEFAULT_DIR = Path("grafana/dashboards")


@click.group("dashboards")
def dashboards_command() -> None:
    """Grafana dashboards: export to JSON files, or import into a running Grafana."""


@dashboards_command.command("list")
def list_command() -> None:
    """List the dashboards (uid and title)."""
    for summary in list_dashboards():
        click.echo(f"{summary['uid']:24} {summary['title']}")


@dashboards_command.command("export")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Directory to write <uid>.json files to.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; fail if the files in --out differ from the generator's output.",
)
def export_command(out: Path, check: bool) -> None:
    """Render every dashboard to normalised JSON (sorted keys, two-space indent)."""
    if check:
        if not out.is_dir():
            raise click.ClickException(
                f"no dashboards to check: {out} is not a directory (give --out, or run "
                "without --check to write them)"
            )
        stale = [
            s["uid"]
            for s in list_dashboards()
            if not (out / f"{s['uid']}.json").is_file()
            or (out / f"{s['uid']}.json").read_text(encoding="utf-8") != dashboard_json(s["uid"])
        ]
        if stale:
            raise click.ClickException(
                f"out of date in {out}: {', '.join(stale)}; run voice-otel dashboards export"
            )
        click.echo(f"{out}: up to date")
        return
    for path in write_dashboards(out):
        click.echo(f"wrote {path}")


@dashboards_command.command("import")
@click.option(
    "--url", envvar="GRAFANA_URL", required=True, help="Grafana base URL (or GRAFANA_URL)."
)
@click.option(
    "--token",
    envvar="GRAFANA_TOKEN",
    required=True,
    help="Service-account token with dashboard write permission (or GRAFANA_TOKEN).",
)
@click.option("--folder-uid", default=None, help="Existing folder to import into.")
@click.option("--uid", "uids", multiple=True, help="Only this dashboard (repeatable).")
def import_command(url: str, token: str, folder_uid: str | None, uids: tuple[str, ...]) -> None:
    """Create or update the dashboards in Grafana through POST /api/dashboards/db.

    The URL and token may come from GRAFANA_URL and GRAFANA_TOKEN instead.
    """
    known = {s["uid"] for s in list_dashboards()}
    unknown = [u for u in uids if u not in known]
    if unknown:
        message = f"unknown dashboard uid(s): {', '.join(unknown)}"
        raise click.BadParameter(message, param_hint="--uid")
    try:
        answers = import_dashboards(url, token, uids=uids or None, folder_uid=folder_uid)
    except ValueError as exc:  # the URL has no http(s) scheme
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    except GrafanaImportError as exc:
        raise click.ClickException(str(exc)) from exc
    for answer in answers:
        click.echo(f"{answer.get('uid')}: {answer.get('status')} {answer.get('url', '')}")
