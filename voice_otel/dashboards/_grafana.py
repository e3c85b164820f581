"""Import dashboards into a running Grafana through its HTTP API (``POST /api/dashboards/db``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx

from voice_otel.dashboards._catalog import get_dashboard, list_dashboards

logger = logging.getLogger(__name__)


class GrafanaImportError(RuntimeError):
    """Grafana refused a dashboard or could not be reached."""


def import_dashboards(
    url: str,
    token: str,
    *,
    uids: Iterable[str] | None = None,
    folder_uid: str | None = None,
    overwrite: bool = True,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> list[dict[str, Any]]:
    """Create or update the dashboards in Grafana, keeping their uids.

    Args:
        url: Grafana base URL, e.g. ``http://localhost:3000``.
        token: a service-account token with dashboard write permission (sent as a Bearer
            token, never logged).
        uids: which dashboards (default: all).
        folder_uid: the folder to put them in (default: Grafana's General folder).
        overwrite: replace a dashboard with the same uid.

    Returns:
        Grafana's answer for each dashboard (``uid``, ``url``, ``version``, ``status``).

    Raises:
        GrafanaImportError: Grafana is unreachable or answered with an error.
    """
    chosen = list(uids) if uids is not None else [d["uid"] for d in list_dashboards()]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    results = []
    with httpx.Client(
        base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
    ) as client:
        for uid in chosen:
            dashboard = get_dashboard(uid)
            dashboard["id"] = None  # Grafana matches on uid; a stale id would be rejected
            payload: dict[str, Any] = {
                "dashboard": dashboard,
                "overwrite": overwrite,
                "message": "voice-otel dashboards import",
            }
            if folder_uid:
                payload["folderUid"] = folder_uid
            try:
                response = client.post("/api/dashboards/db", json=payload)
            except httpx.HTTPError as exc:
                raise GrafanaImportError(f"Grafana at {url} is unreachable: {exc}") from exc
            if response.status_code >= 400:
                raise GrafanaImportError(
                    f"Grafana refused {uid}: HTTP {response.status_code} {response.text[:300]}"
                )
            answer: dict[str, Any] = response.json()
            logger.info("imported dashboard %s (version %s)", uid, answer.get("version"))
            results.append(answer)
    return results
