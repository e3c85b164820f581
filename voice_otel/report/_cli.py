"""``voice-otel report``: render a run's latency report to HTML (and PNG)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from voice_otel._cli_types import Seconds
from voice_otel.report._otlp import ReportSourceError, load_json_lines
from voice_otel.report._paths import unwritable_reason
from voice_otel.report._png import ScreenshotError, check_png_path
from voice_otel.report._prometheus import load_prometheus
from voice_otel.report._write import write_report


def _png_name(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        try:
            check_png_path(value)
        except ScreenshotError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


@click.command("report")
@click.option(
    "--from-json",
    "json_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="OTLP-JSON lines file written by the embedded default (one bar per turn).",
)
@click.option("--prometheus", "prometheus_url", help="Prometheus base URL (one bar per step).")
@click.option(
    "--since",
    type=Seconds(min=0.0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Prometheus: seconds back.",
)
@click.option(
    "--step",
    type=Seconds(min=1.0),
    default=60.0,
    show_default=True,
    help="Prometheus: seconds per bar.",
)
@click.option("--job", default=None, help="Prometheus: regex on the job (service.name) label.")
@click.option(
    "--objective",
    type=Seconds(min=0.0, min_open=True),
    default=None,
    help="Latency objective in seconds to draw (default: from the spans; none for Prometheus).",
)
@click.option("--title", default="Voice latency report", show_default=True)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write.",
)
@click.option(
    "--png",
    "png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_png_name,
    help="Also write a PNG screenshot (needs Chromium).",
)
def report_command(
    json_path: Path | None,
    prometheus_url: str | None,
    since: float,
    step: float,
    job: str | None,
    objective: float | None,
    title: str,
    out: Path,
    png: Path | None,
) -> None:
    """Render a per-turn latency waterfall and percentile charts to a self-contained page."""
    if (json_path is None) == (prometheus_url is None):
        raise click.UsageError("give exactly one of --from-json FILE or --prometheus URL")
    try:
        if json_path is not None:
            data = load_json_lines(json_path, title=title)
            if objective is not None:
                data.objective = objective
        else:
            assert prometheus_url is not None
            end = time.time()
            data = load_prometheus(
                prometheus_url.rstrip("/"),
                start=end - since,
                end=end,
                step=step,
                job=job,
                objective=objective,
                title=title,
            )
        html_file, png_file = write_report(data, out, png)
    except (ReportSourceError, ScreenshotError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the page itself: the PNG's failures are ScreenshotErrors
        raise click.ClickException(f"cannot write {out}: {unwritable_reason(out, exc)}") from exc
    click.echo(f"wrote {html_file}" + (f" and {png_file}" if png_file else ""))
