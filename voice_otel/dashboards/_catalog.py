"""The set of dashboards, their rendering to normalised JSON and to files."""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_otel.dashboards import _ai_services, _api, _health, _infrastructure, _overview

logger = logging.getLogger(__name__)

_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    _overview.UID: _overview.build,
    _ai_services.UID: _ai_services.build,
    _api.UID: _api.build,
    _infrastructure.UID: _infrastructure.build,
    _health.UID: _health.build,
}


@functools.cache
def _built(uid: str) -> dict[str, Any]:
    return _BUILDERS[uid]()


def list_dashboards() -> list[dict[str, str]]:
    """The dashboards shipped with voice-otel, in display order.

    Returns:
        One ``{"uid", "title", "description"}`` dict per dashboard.
    """
    summaries = []
    for uid in _BUILDERS:
        model = _built(uid)
        summaries.append({"uid": uid, "title": model["title"], "description": model["description"]})
    return summaries


def get_dashboard(uid: str) -> dict[str, Any]:
    """The Grafana dashboard JSON model with this uid (a fresh copy the caller may change).

    Raises:
        KeyError: no dashboard has this uid.
    """
    if uid not in _BUILDERS:
        raise KeyError(uid)
    return copy.deepcopy(_built(uid))


def dashboard_json(uid: str) -> str:
    """The dashboard as normalised JSON text: sorted keys, two-space indent, final newline.

    Raises:
        KeyError: no dashboard has this uid.
    """
    return json.dumps(get_dashboard(uid), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(directory: str | Path) -> list[Path]:
    """Write every dashboard to ``directory/<uid>.json`` and return the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for uid in _BUILDERS:
        path = out / f"{uid}.json"
        path.write_text(dashboard_json(uid), encoding="utf-8")
        written.append(path)
    logger.info("wrote %s dashboards to %s", len(written), out)
    return written
