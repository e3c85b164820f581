"""Grafana dashboards for voice agents, generated from the telemetry contract.

The dashboards are built in Python with grafana-foundation-sdk and rendered to
``grafana/dashboards/*.json`` (``voice-otel dashboards export``); the shipped files equal this
module's output. Every query names metrics from :mod:`voice_otel._contract` or from the
documented external sources in :mod:`voice_otel.dashboards._external`.

Example:
    >>> from voice_otel import dashboards
    >>> [d["uid"] for d in dashboards.list_dashboards()][:1]
    ['voice-overview']
    >>> dashboards.get_dashboard("voice-overview")["title"]
    'Voice Agent Overview'
"""

from __future__ import annotations

from voice_otel.dashboards._catalog import (
    dashboard_json,
    get_dashboard,
    list_dashboards,
    write_dashboards,
)

__all__ = ["dashboard_json", "get_dashboard", "list_dashboards", "write_dashboards"]
