"""Rule definitions: alerting rules, recording rules and the groups that hold them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from voice_otel.alerts._promql import duration

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+$")
_RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule.

    Attributes:
        name: The alert name, CamelCase; also the runbook's file name.
        expr: PromQL, one clause per line, ending in a newline (rendered as a block string).
        for_s: Seconds the condition must hold before the alert fires.
        severity: ``critical`` pages, ``warning`` opens a ticket, ``info`` is only recorded.
        summary: One static sentence.
        description: What is wrong, with ``{{ $labels.x }}`` and ``{{ $value }}`` templates.
        labels: Extra labels (``component``, ``stage``, burn-rate windows); may be templates.
    """

    name: str
    expr: str
    for_s: int
    severity: Severity
    summary: str
    description: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ALERT_NAME.match(self.name):
            raise ValueError(f"alert name must be CamelCase: {self.name!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity must be one of {SEVERITIES}")
        if self.for_s <= 0:
            raise ValueError(f"{self.name}: 'for' must be positive")
        if "{{" in self.summary:
            raise ValueError(f"{self.name}: the summary must be static (no templates)")
        if "$value" not in self.description:
            raise ValueError(f"{self.name}: the description must show {{{{ $value }}}}")
        _check_expr(self.name, self.expr)
        for key in self.labels:
            if not _LABEL_NAME.match(key) or key == "severity":
                raise ValueError(f"{self.name}: bad extra label {key!r}")
        object.__setattr__(self, "labels", _frozen(self.labels))

    def to_dict(self, runbook_base_url: str) -> dict[str, Any]:
        """The rule as Prometheus reads it from a rule file."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": duration(self.for_s),
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": runbook_url(runbook_base_url, self.name),
            },
        }


@dataclass(frozen=True)
class RecordingRule:
    """One Prometheus recording rule, named ``level:metric:operations``."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _RECORD_NAME.match(self.record):
            raise ValueError(f"recording rule name must be level:metric:operations: {self.record}")
        _check_expr(self.record, self.expr)
        object.__setattr__(self, "labels", _frozen(self.labels))

    def to_dict(self) -> dict[str, Any]:
        """The rule as Prometheus reads it from a rule file."""
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


Rule = AlertRule | RecordingRule


@dataclass(frozen=True)
class RuleGroup:
    """A group of rules, evaluated together, rendered to ``<file>.yml``.

    Attributes:
        name: The group name Prometheus shows.
        file: The rule file's stem under ``collector/rules/``.
        title: One line for the file's header comment.
        rules: Recording rules first (alerts in the same group read their fresh results).
    """

    name: str
    file: str
    title: str
    rules: tuple[Rule, ...]

    @property
    def alerts(self) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, AlertRule))

    @property
    def recordings(self) -> tuple[RecordingRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, RecordingRule))

    def to_dict(self, runbook_base_url: str) -> dict[str, Any]:
        """The group as Prometheus reads it from a rule file."""
        return {
            "name": self.name,
            "rules": [
                r.to_dict(runbook_base_url) if isinstance(r, AlertRule) else r.to_dict()
                for r in self.rules
            ],
        }


def runbook_url(base_url: str, alert_name: str) -> str:
    """Where an alert's runbook lives: ``<base>/<AlertName>.md``."""
    return f"{base_url.rstrip('/')}/{alert_name}.md"


def _check_expr(name: str, expr: str) -> None:
    if not expr.endswith("\n") or expr.endswith("\n\n"):
        raise ValueError(f"{name}: expr must end in exactly one newline")
    if any(line != line.rstrip() for line in expr.splitlines()):
        raise ValueError(f"{name}: expr has trailing whitespace")
