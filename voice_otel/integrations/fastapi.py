"""FastAPI integration: tracing by route template plus health, metrics, alerts and dashboards.

```python
from fastapi import FastAPI
from voice_otel.health import HealthMonitor
from voice_otel.integrations.fastapi import instrument_app

app = FastAPI()
monitor = HealthMonitor()
monitor.add_redis("redis://127.0.0.1:6379/0")
instrument_app(app, monitor=monitor, alertmanager_url="http://127.0.0.1:9093", token="...")
```

Adds ``GET /health``, ``/health/detailed``, ``/metrics``, ``/alerts``, ``/dashboards`` and
``/dashboard/{id}``, each answering ``HEAD`` too; traces and meters every other route with the
contrib ``FastAPIInstrumentor`` (spans named by route template, never by raw path); starts the
monitor with the app and measures the server's event-loop lag. Needs
``pip install voice-otel[fastapi]``. See ``docs/http.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.routing import BaseRoute

from voice_otel import _runtime
from voice_otel.health import HealthMonitor
from voice_otel.integrations._fastapi_routes import (
    UNTRACED_PATHS,
    ApiError,
    Endpoints,
    api_error_handler,
    build_router,
)
from voice_otel.integrations._fastapi_sources import Alerts, Dashboards

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["instrument_app", "is_instrumented", "uninstrument_app"]

_SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
# The stable HTTP conventions (http.server.request.duration in seconds, by http.route) are what
# the dashboards and alerts read; the contrib default is still the old ones. OpenTelemetry reads
# this choice once per process, when the first instrumentation initialises (system metrics do),
# so it is made here, on import, and an explicit choice of the application's is kept.
os.environ.setdefault(_SEMCONV_OPT_IN, "http")

logger = logging.getLogger(__name__)

_STATE = "_voice_otel_integration"
_EXCLUDED_ENV = ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


@dataclass
class _Installed:
    monitor: HealthMonitor
    routes: list[BaseRoute]
    lifespan: Any
    traced_by_us: bool


def instrument_app(
    app: FastAPI,
    monitor: HealthMonitor | None = None,
    *,
    alertmanager_url: str | None = None,
    token: str | None = None,
    dashboards_dir: str | Path | None = None,
    registry: CollectorRegistry | None = None,
    start_monitor: bool = True,
    excluded_urls: Iterable[str] = (),
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> HealthMonitor:
    """Instrument a FastAPI app and add voice_otel's endpoints to it, in one call.

    Call it before the server starts. A second call logs a warning and changes nothing;
    :func:`uninstrument_app` undoes it.

    Args:
        app: The application.
        monitor: The health monitor behind ``/health``; default: a new one with only the
            orchestrator self check.
        alertmanager_url: Alertmanager's base URL for ``/alerts`` (``None``: ``/alerts``
            answers 503).
        token: When set, ``/health/detailed`` and ``/alerts`` require
            ``Authorization: Bearer <token>``.
        dashboards_dir: Serve ``<uid>.json`` files from this directory instead of the
            dashboards shipped with voice_otel.
        registry: The prometheus_client registry ``/metrics`` renders (default: the global
            one, where the OpenTelemetry Prometheus reader registers).
        start_monitor: Start the monitor when the app starts and stop it when the app stops.
        excluded_urls: More URL regexes to leave untraced (``/health``, ``/health/detailed``
            and ``/metrics`` always are; so are ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``).
        tracer_provider: Default: voice_otel's current tracer provider.
        meter_provider: Default: voice_otel's current meter provider.

    Returns:
        The monitor behind ``/health``.
    """
    installed: _Installed | None = getattr(app, _STATE, None)
    if installed is not None:
        logger.warning("voice_otel: this FastAPI app is already instrumented; nothing changed")
        return installed.monitor
    if token is not None and not token.strip():
        raise ValueError("token must be a non-empty string (or None for no authentication)")

    if monitor is None:
        monitor = HealthMonitor()
        monitor.add_orchestrator()
    endpoints = Endpoints(
        monitor=monitor,
        token=token,
        alerts=Alerts(alertmanager_url) if alertmanager_url else None,
        dashboards=Dashboards(dashboards_dir),
        registry=registry or REGISTRY,
    )

    existing = {getattr(r, "path", None) for r in app.router.routes}
    router = build_router(endpoints)
    ours = {getattr(r, "path", "") for r in router.routes}
    shadowed = {p for p in existing if p and p in ours}
    for path in sorted(shadowed):
        logger.warning(
            "voice_otel: the app already serves %s; its own route takes precedence", path
        )
    # Our HEAD route would still answer where the app's own route serves only GET: leave it
    # out, so that HEAD and GET on such a path never reach different code.
    router.routes[:] = [r for r in router.routes if not _head_at(r, shadowed)]
    before = {id(r) for r in app.router.routes}
    app.include_router(router)
    added = [r for r in app.router.routes if id(r) not in before]
    app.add_exception_handler(ApiError, api_error_handler)

    traced_by_us = not getattr(app, "_is_instrumented_by_opentelemetry", False)
    if traced_by_us:
        _warn_if_old_http_conventions()
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider or _runtime.tracer_provider(),
            meter_provider=meter_provider or _runtime.meter_provider(),
            excluded_urls=",".join(_exclusions(app.root_path, excluded_urls)),
        )
    else:
        logger.warning(
            "voice_otel: the app was already instrumented by OpenTelemetry; its exclusions "
            "stay as they are (add %s to them)",
            ", ".join(UNTRACED_PATHS),
        )

    original_lifespan = app.router.lifespan_context
    app.router.lifespan_context = _with_monitor(original_lifespan, monitor, start_monitor)
    app.openapi_schema = None
    setattr(app, _STATE, _Installed(monitor, added, original_lifespan, traced_by_us))
    return monitor


def _head_at(route: BaseRoute, paths: set[str]) -> bool:
    return getattr(route, "methods", None) == {"HEAD"} and getattr(route, "path", "") in paths


def _warn_if_old_http_conventions() -> None:
    """Say so when the process already settled on the old HTTP metric names."""
    try:
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetrySemanticConventionStability as Stability,
        )
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetryStabilitySignalType as Signal,
        )
        from opentelemetry.instrumentation._semconv import _StabilityMode as Mode

        Stability._initialize()
        mode = Stability._get_opentelemetry_stability_opt_in_mode(Signal.HTTP)
    except (ImportError, AttributeError):  # a contrib release that moved its internals
        return
    if mode == Mode.DEFAULT:
        logger.warning(
            "voice_otel: HTTP server metrics will use the old names (http.server.duration in "
            "ms), which the API dashboard and alerts do not read: OpenTelemetry chose its HTTP "
            "conventions before voice_otel.integrations.fastapi was imported, or %s excludes "
            "http. Set %s=http in the environment, or import the integration first.",
            _SEMCONV_OPT_IN,
            _SEMCONV_OPT_IN,
        )


def uninstrument_app(app: FastAPI) -> None:
    """Undo :func:`instrument_app`: remove the endpoints, the tracing and the lifespan hook.

    The monitor is not stopped (it may serve elsewhere); call ``monitor.stop()`` if needed.
    """
    installed: _Installed | None = getattr(app, _STATE, None)
    if installed is None:
        logger.warning("voice_otel: this FastAPI app is not instrumented; nothing changed")
        return

    ours = {id(r) for r in installed.routes}
    app.router.routes[:] = [r for r in app.router.routes if id(r) not in ours]
    app.exception_handlers.pop(ApiError, None)
    app.router.lifespan_context = installed.lifespan
    if installed.traced_by_us:
        FastAPIInstrumentor.uninstrument_app(app)  # also rebuilds the middleware stack
    else:
        app.middleware_stack = None  # rebuilt on the next request, without our handler
    app.openapi_schema = None
    delattr(app, _STATE)


def is_instrumented(app: FastAPI) -> bool:
    """Whether :func:`instrument_app` is in effect on ``app``."""
    return getattr(app, _STATE, None) is not None


def _exclusions(root_path: str, extra: Iterable[str]) -> list[str]:
    """Regexes matching the full URL of exactly our untraced paths (query strings aside)."""
    root = re.escape(root_path.rstrip("/"))
    patterns = [rf"^[a-z][a-z0-9+.-]*://[^/]+{root}{re.escape(p)}/?$" for p in UNTRACED_PATHS]
    patterns += [p.strip() for p in extra if p.strip()]
    for name in _EXCLUDED_ENV:
        env = os.environ.get(name, "")
        if env:
            patterns += [p.strip() for p in env.split(",") if p.strip()]
            break
    for pattern in patterns:
        if "," in pattern:
            raise ValueError(f"excluded URL patterns cannot contain ',': {pattern!r}")
        re.compile(pattern)  # fail here, not on the first request
    return patterns


def _with_monitor(original: Any, monitor: HealthMonitor, start: bool) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        started_here = start and not monitor.running
        if started_here:
            await asyncio.to_thread(monitor.start)
        monitor.watch_loop(asyncio.get_running_loop())
        try:
            async with original(app) as state:
                yield state
        finally:
            monitor.watch_loop(None)
            if started_here:
                await asyncio.to_thread(monitor.stop)

    return lifespan
