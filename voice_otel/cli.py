"""The ``voice-otel`` command line."""

from __future__ import annotations

from typing import Any

import click

from voice_otel._telemetry_doc import telemetry_doc_command
from voice_otel.alerts._cli import alerts_command, rules_command
from voice_otel.dashboards._cli import dashboards_command
from voice_otel.demo._cli import demo_command
from voice_otel.report._cli import report_command
from voice_otel.stack._cli import stack_command


class _Group(click.Group):
    """Reports a file the system refuses (``--out /proc/x``, a full disk) as a one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None:
                raise
            reason = exc.strerror or type(exc).__name__
            raise click.ClickException(f"{exc.filename}: {reason}") from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="voice-otel")
def main() -> None:
    """OpenTelemetry for voice AI agents: demo, stack, alert rules, dashboards, reports."""


main.add_command(telemetry_doc_command)
main.add_command(rules_command)
main.add_command(alerts_command)
main.add_command(dashboards_command)
main.add_command(demo_command)
main.add_command(report_command)
main.add_command(stack_command)

if __name__ == "__main__":
    main()
