"""The endpoints the FastAPI integration adds: health, metrics, alerts and dashboards."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from voice_otel._alertmanager import (
    AlertmanagerError,
    AlertmanagerUnavailable,
    NotAlertmanager,
)
from voice_otel.health import HealthMonitor, HealthState
from voice_otel.health._sanitize import sanitize_reason
from voice_otel.integrations._fastapi_models import (
    AlertsReport,
    DashboardList,
    DetailedHealth,
    ErrorBody,
    HealthStatus,
)
from voice_otel.integrations._fastapi_sources import (
    DASHBOARD_ID,
    Alerts,
    Dashboards,
    render_metrics,
)

HEALTH_PATH = "/health"
DETAILED_PATH = "/health/detailed"
METRICS_PATH = "/metrics"
ALERTS_PATH = "/alerts"
DASHBOARDS_PATH = "/dashboards"
DASHBOARD_PATH = "/dashboard/{dashboard_id}"
UNTRACED_PATHS = (HEALTH_PATH, DETAILED_PATH, METRICS_PATH)
_NO_STORE = {"Cache-Control": "no-store"}

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


class ApiError(Exception):
    """An error answer of our endpoints, rendered as an :class:`ErrorBody`."""

    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body = {"error": exc.error, "detail": exc.detail}
    return JSONResponse(body, status_code=exc.status, headers={**_NO_STORE, **(exc.headers or {})})


@dataclass
class Endpoints:
    """What the endpoints read from."""

    monitor: HealthMonitor
    token: str | None
    alerts: Alerts | None
    dashboards: Dashboards
    registry: CollectorRegistry


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


def _get_and_head(router: APIRouter, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """Register an endpoint for GET and, outside the OpenAPI schema, for HEAD.

    Load balancers and uptime checkers probe with HEAD. A route of its own (not one route with
    both methods) keeps one operation per path in the schema, without a duplicate operation id;
    it has the same dependencies, so the token applies to HEAD too, and the server drops the body.
    """

    def register(endpoint: _Endpoint) -> _Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], **options)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register


def build_router(cfg: Endpoints) -> APIRouter:
    """The router with every endpoint, bound to ``cfg``."""
    router = APIRouter(tags=["voice-otel"])
    bearer = HTTPBearer(
        auto_error=False, description="The token given to voice_otel's instrument_app()."
    )
    token_digest = hashlib.sha256(cfg.token.encode()).digest() if cfg.token else None

    async def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        given = credentials.credentials if credentials is not None else ""
        # Comparing digests keeps the comparison constant-time whatever the lengths.
        digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        if token_digest is None or not hmac.compare_digest(digest, token_digest):
            raise ApiError(
                401,
                "unauthorized",
                "a valid 'Authorization: Bearer <token>' header is required",
                {"WWW-Authenticate": "Bearer"},
            )

    guarded = [Depends(require_token)] if token_digest is not None else []
    auth_errors = (401,) if token_digest is not None else ()

    @_get_and_head(
        router,
        HEALTH_PATH,
        response_model=HealthStatus,
        responses={503: {"model": HealthStatus, "description": "A critical component is down."}},
        summary="Liveness: 200 unless a critical component is unhealthy",
    )
    async def health() -> JSONResponse:
        state = cfg.monitor.status()
        code = 503 if state is HealthState.UNHEALTHY else 200
        return JSONResponse({"status": state.value}, status_code=code, headers=_NO_STORE)

    @_get_and_head(
        router,
        DETAILED_PATH,
        response_model=DetailedHealth,
        responses={
            503: {"model": DetailedHealth, "description": "A critical component is down."},
            **_errors(*auth_errors),
        },
        dependencies=guarded,
        summary="Every component: state, latency, last error, trend",
    )
    async def health_detailed() -> JSONResponse:
        report = cfg.monitor.report()
        code = 503 if report["status"] == HealthState.UNHEALTHY.value else 200
        return JSONResponse(report, status_code=code, headers=_NO_STORE)

    @_get_and_head(
        router,
        METRICS_PATH,
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
        summary="Prometheus metrics of this process (OpenMetrics when asked for)",
    )
    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept")
        body, content_type = await run_in_threadpool(render_metrics, cfg.registry, accept)
        return Response(body, media_type=content_type, headers=_NO_STORE)

    @_get_and_head(
        router,
        ALERTS_PATH,
        response_model=AlertsReport,
        responses=_errors(*auth_errors, 502, 503),
        dependencies=guarded,
        summary="Active alerts from Alertmanager, with a summary",
    )
    async def alerts() -> dict[str, Any]:
        if cfg.alerts is None:
            raise ApiError(
                503,
                "alertmanager_not_configured",
                "no Alertmanager is configured: pass alertmanager_url to instrument_app()",
            )
        try:
            return await cfg.alerts.report()
        except NotAlertmanager as exc:
            reason = sanitize_reason(exc.reason)
            raise ApiError(
                502,
                "alertmanager_error",
                f"the configured Alertmanager address does not answer as Alertmanager: {reason}",
            ) from None
        except AlertmanagerUnavailable as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "server error"
            raise ApiError(
                503, "alertmanager_unavailable", f"Alertmanager did not answer ({cause})"
            ) from None
        except AlertmanagerError as exc:
            raise ApiError(502, "alertmanager_error", sanitize_reason(str(exc))) from None

    @_get_and_head(
        router,
        DASHBOARDS_PATH,
        response_model=DashboardList,
        summary="The Grafana dashboards shipped with voice-otel",
    )
    async def dashboards() -> dict[str, Any]:
        return {"dashboards": await run_in_threadpool(cfg.dashboards.list)}

    @_get_and_head(
        router,
        DASHBOARD_PATH,
        response_model=dict[str, Any],
        responses=_errors(404),
        summary="One Grafana dashboard (JSON model, ready to import)",
    )
    async def dashboard(
        dashboard_id: Annotated[str, Path(pattern=DASHBOARD_ID, max_length=64)],
    ) -> dict[str, Any]:
        try:
            return await run_in_threadpool(cfg.dashboards.get, dashboard_id)
        except KeyError:
            raise ApiError(404, "not_found", "no dashboard has this id") from None

    return router
