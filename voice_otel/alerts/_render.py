"""Render rule groups to Prometheus rule-file YAML, byte for byte reproducible."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import yaml

from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import RuleGroup
from voice_otel.alerts._rules import rule_groups

logger = logging.getLogger(__name__)


class _Dumper(yaml.SafeDumper):
    """Block style, 2-space indent with list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_group(group: RuleGroup, config: AlertConfig) -> str:
    """One rule file's text: a header comment, then ``groups:`` with this one group."""
    changed = config.changed()
    settings = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the default settings"
    lines = [
        f"Prometheus rules: {group.title}.",
        f"Rendered by `voice-otel rules render` (voice_otel/alerts) with {settings}; edit the "
        "generator, not this file (a test compares them byte for byte). Loaded by Prometheus "
        "through rule_files in collector/prometheus.yml. Every alert has a runbook in "
        "docs/runbooks/ and promtool tests in collector/rules/tests/.",
    ]
    header = "".join(
        f"# {line}\n" for paragraph in lines for line in textwrap.wrap(paragraph, width=96)
    )
    body = yaml.dump(
        {"groups": [group.to_dict(config.runbook_base_url)]},
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,  # one line per description, however long
        indent=2,
    )
    return header + body


def render_rule_files(config: AlertConfig | None = None) -> dict[str, str]:
    """Every rule file's name (``voice-slo.yml``) and text, for these settings.

    Example::

        for name, text in render_rule_files(AlertConfig(latency_objective_s=1.5)).items():
            Path("rules", name).write_text(text)
    """
    config = config or AlertConfig()
    return {f"{g.file}.yml": render_group(g, config) for g in rule_groups(config)}


def write_rule_files(out_dir: str | Path, config: AlertConfig | None = None) -> list[Path]:
    """Render the rule files into ``out_dir`` (created if needed); return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_rule_files(config).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    logger.info("wrote %d rule files to %s", len(written), out)
    return written
