"""Import dashboards into a running Grafana through its HTTP API (``POST /api/dashboards/db``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx

from voice_otel._http import body_excerpt, describe_failure, json_excerpt, not_json
from voice_otel.dashboards._catalog import get_dashboard, list_dashboards

logger = logging.getLogger(__name__)


class GrafanaImportError(RuntimeError):
    """Grafana refused a dashboard, could not be reached, or the URL is not Grafana."""


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
        ValueError: ``url`` does not start with ``http://`` or ``https://``.
        GrafanaImportError: Grafana is unreachable, answered with an error, or ``url`` answers
            but is not Grafana.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Grafana URL must start with http:// or https://: {url!r}")
    base_url = url.rstrip("/")
    chosen = list(uids) if uids is not None else [d["uid"] for d in list_dashboards()]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    results = []
    with httpx.Client(
        base_url=base_url, headers=headers, timeout=timeout, transport=transport
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
                message = describe_failure(exc, f"Grafana at {base_url}", timeout)
                raise GrafanaImportError(message) from exc
            if response.status_code >= 400:
                status = f"HTTP {response.status_code} {body_excerpt(response)}".rstrip()
                hint = " (is this Grafana's address?)" if response.status_code == 404 else ""
                raise GrafanaImportError(f"Grafana refused {uid}: {status}{hint}")
            answer = _import_result(response, base_url)
            logger.info("imported dashboard %s (version %s)", uid, answer.get("version"))
            results.append(answer)
    return results


def _import_result(response: httpx.Response, base_url: str) -> dict[str, Any]:
    """Grafana's answer to one import, or an error saying the URL is not Grafana."""
    request = "POST /api/dashboards/db"
    try:
        answer = response.json() if response.content else None
    except ValueError:
        reason = not_json(request, response)
    else:
        if isinstance(answer, dict) and "uid" in answer and "status" in answer:
            return answer
        reason = f"{request} answered {json_excerpt(answer)}, not a dashboard import result"
    raise GrafanaImportError(f"{base_url} does not look like Grafana: {reason}")
