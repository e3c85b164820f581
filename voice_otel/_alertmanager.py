"""A small client for the Alertmanager v2 HTTP API: list alerts, acknowledge with a silence.

Used by ``voice-otel alerts list|ack`` and by the FastAPI ``/alerts`` endpoint. Every call opens
its own short-lived connection, so a client object can be created once and shared freely.

An alert's lifecycle as voice_otel reports it (:func:`lifecycle_state`):

- ``active``: firing and being notified;
- ``acknowledged``: firing but silenced, i.e. someone ran ``voice-otel alerts ack`` (a silence
  with a comment and an author);
- ``suppressed``: firing but inhibited by a more important alert (a critical of the same group,
  an unhealthy provider);
- ``unprocessed``: just received, not yet routed;
- ``resolved``: no longer firing; Alertmanager sends it once to receivers with ``send_resolved``
  and then drops it, so it never appears in :meth:`AlertmanagerClient.alerts`.

Example::

    client = AlertmanagerClient("http://127.0.0.1:9093")
    alerts = await client.alerts()
    summary = summarize(alerts)  # {"total": 3, "by_state": {...}, "by_severity": {...}}
    silence_id = await client.silence(
        {"alertname": "VoiceComponentUnhealthy", "component": "redis"},
        comment="Redis failover in progress",
        created_by="oncall",
        duration_s=3600,
    )
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from voice_otel._http import body_excerpt, describe_failure, json_excerpt, not_json

__all__ = [
    "LIFECYCLE_STATES",
    "AlertmanagerClient",
    "AlertmanagerError",
    "AlertmanagerUnavailable",
    "lifecycle_state",
    "summarize",
]

logger = logging.getLogger(__name__)

LIFECYCLE_STATES = ("active", "acknowledged", "suppressed", "unprocessed")


class AlertmanagerError(Exception):
    """Alertmanager answered, but refused the request (bad matcher, unknown silence, ...)."""


class AlertmanagerUnavailable(AlertmanagerError):
    """Alertmanager could not be reached, timed out or failed, or the URL is not Alertmanager."""


class NotAlertmanager(AlertmanagerUnavailable):
    """Something answered at the URL, but not as Alertmanager's v2 API does.

    Attributes:
        reason: What was wrong with the answer, without the address (safe to show to clients).
    """

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"{base_url} does not look like Alertmanager: {reason}")
        self.reason = reason


class AlertmanagerClient:
    """Async client for the parts of the Alertmanager v2 API voice_otel uses.

    Args:
        base_url: Alertmanager's address, e.g. ``http://127.0.0.1:9093`` (a path prefix set with
            ``--web.route-prefix`` may be included).
        timeout: Seconds allowed for each request, connection included.
    """

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL must start with http:// or https://: {base_url!r}")
        if not 0 < timeout < math.inf:  # also refuses NaN
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def alerts(
        self, active: bool = True, silenced: bool = True, inhibited: bool = True
    ) -> list[dict[str, Any]]:
        """Alerts Alertmanager currently holds, as the API returns them.

        Args:
            active: Include alerts that are notified.
            silenced: Include alerts muted by a silence (acknowledged).
            inhibited: Include alerts muted by an inhibition rule.

        Returns:
            One dict per alert with ``labels``, ``annotations``, ``startsAt``, ``endsAt``,
            ``fingerprint``, ``receivers`` and ``status`` (``state``, ``silencedBy``,
            ``inhibitedBy``).
        """
        params = {
            "active": _flag(active),
            "silenced": _flag(silenced),
            "inhibited": _flag(inhibited),
        }
        body = await self._request("GET", "/api/v2/alerts", params=params)
        return self._objects(body, "GET /api/v2/alerts", "alerts", "labels")

    async def silences(self) -> list[dict[str, Any]]:
        """Every silence Alertmanager knows, including expired ones (``status.state``)."""
        body = await self._request("GET", "/api/v2/silences")
        return self._objects(body, "GET /api/v2/silences", "silences", "matchers")

    async def silence(
        self, matchers: Mapping[str, str], comment: str, created_by: str, duration_s: float
    ) -> str:
        """Create a silence that mutes every alert whose labels equal ``matchers``.

        Args:
            matchers: Label name to exact value, e.g. ``{"alertname": "VoiceCostOverBudget"}``.
            comment: Why the alert is acknowledged; shown next to it.
            created_by: Who acknowledged it.
            duration_s: How long the silence lasts, in seconds, from now.

        Returns:
            The new silence's id.

        Raises:
            ValueError: No matcher, an empty comment or a non-positive duration.
            AlertmanagerError: Alertmanager rejected the silence.
            AlertmanagerUnavailable: Alertmanager could not be reached.
        """
        if not matchers:
            raise ValueError("a silence needs at least one label matcher")
        if not comment.strip():
            raise ValueError("a silence needs a comment saying why")
        if duration_s <= 0:
            raise ValueError(f"silence duration must be positive, got {duration_s}")

        starts = datetime.now(UTC)
        payload = {
            "matchers": [
                {"name": name, "value": value, "isRegex": False, "isEqual": True}
                for name, value in matchers.items()
            ],
            "startsAt": _timestamp(starts),
            "endsAt": _timestamp(starts + timedelta(seconds=duration_s)),
            "createdBy": created_by,
            "comment": comment,
        }
        body = await self._request("POST", "/api/v2/silences", json=payload)
        if not isinstance(body, dict) or not isinstance(body.get("silenceID"), str):
            raise NotAlertmanager(
                self.base_url,
                f"POST /api/v2/silences answered {json_excerpt(body)} without a silenceID",
            )
        silence_id = body["silenceID"]
        logger.info("created Alertmanager silence %s for %s", silence_id, dict(matchers))
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        """End a silence now; the alerts it muted become active again."""
        await self._request("DELETE", f"/api/v2/silence/{silence_id}")

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            message = describe_failure(exc, f"Alertmanager at {self.base_url}", self.timeout)
            raise AlertmanagerUnavailable(message) from exc

        status = f"HTTP {response.status_code} {body_excerpt(response)}".rstrip()
        if response.status_code >= 500:
            raise AlertmanagerUnavailable(
                f"Alertmanager at {self.base_url} failed {method} {path}: {status}"
            )
        if response.status_code >= 400:
            # Shown by the FastAPI /alerts endpoint too, so it leaves the address out. A 404 on
            # DELETE is an unknown silence; elsewhere the API itself is missing.
            missing = response.status_code == 404 and method != "DELETE"
            hint = " (is this Alertmanager's address?)" if missing else ""
            raise AlertmanagerError(f"Alertmanager rejected {method} {path}: {status}{hint}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise NotAlertmanager(self.base_url, not_json(f"{method} {path}", response)) from exc

    def _objects(self, body: Any, request: str, noun: str, key: str) -> list[dict[str, Any]]:
        """``body`` if it is a list of objects that each have ``key``; else not Alertmanager."""
        if not isinstance(body, list) or not all(
            isinstance(item, dict) and key in item for item in body
        ):
            raise NotAlertmanager(
                self.base_url, f"{request} answered {json_excerpt(body)}, not a list of {noun}"
            )
        return body


def lifecycle_state(alert: Mapping[str, Any]) -> str:
    """Where an alert returned by :meth:`AlertmanagerClient.alerts` is in its lifecycle.

    Returns:
        ``acknowledged`` when a silence mutes it, ``suppressed`` when only an inhibition does,
        otherwise Alertmanager's own state (``active`` or ``unprocessed``).
    """
    status = alert.get("status") or {}
    if status.get("silencedBy"):
        return "acknowledged"
    if status.get("inhibitedBy") or status.get("state") == "suppressed":
        return "suppressed"
    state = status.get("state") or "active"
    return str(state)


def summarize(alerts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count alerts by lifecycle state and by severity.

    Returns:
        ``{"total": n, "by_state": {state: n}, "by_severity": {severity: n}}``; every state of
        :data:`LIFECYCLE_STATES` is present (possibly 0), severities only when seen (``none``
        for an alert without a severity label).
    """
    by_state: Counter[str] = Counter({state: 0 for state in LIFECYCLE_STATES})
    by_severity: Counter[str] = Counter()
    total = 0
    for alert in alerts:
        total += 1
        by_state[lifecycle_state(alert)] += 1
        by_severity[str((alert.get("labels") or {}).get("severity", "none"))] += 1
    return {"total": total, "by_state": dict(by_state), "by_severity": dict(by_severity)}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
