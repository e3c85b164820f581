"""The ``voice-otel`` command line."""

from __future__ import annotations

import click

from voice_otel._telemetry_doc import telemetry_doc_command
from voice_otel.alerts._cli import alerts_command, rules_command
from voice_otel.dashboards._cli import dashboards_command
from voice_otel.demo._cli import demo_command
from voice_otel.report._cli import report_command
from voice_otel.stack._cli import stack_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
