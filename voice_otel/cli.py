"""The ``voice-otel`` command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="voice-otel")
def main() -> None:
    """OpenTelemetry for voice AI agents: demo, stack, alert rules, dashboards, reports."""


if __name__ == "__main__":
    main()
