"""HealthMonitor: what a voice agent depends on, checked in the background."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import time
from collections.abc import Callable, Container, Iterable
from typing import TYPE_CHECKING, Any

from voice_otel import _runtime
from voice_otel._events import StageOutcome, add_stage_listener
from voice_otel.health._checks import (
    REACHABLE_STATUS,
    SUCCESS_STATUS,
    HttpCheck,
    OrchestratorCheck,
    PostgresCheck,
    RedisCheck,
    TcpCheck,
    livekit_http_url,
)
from voice_otel.health._component import Component
from voice_otel.health._gauges import hub_for
from voice_otel.health._pipeline import PipelineHealth, PipelineWindow
from voice_otel.health._runner import Registration, Runner
from voice_otel.health._sanitize import secrets_in
from voice_otel.health._types import ComponentHealth, HealthState, Thresholds

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,99}$")
_MAX_PIPELINE_ONLY = 64
_ORCHESTRATOR_THRESHOLDS = Thresholds(degraded_latency=0.1)


class HealthMonitor:
    """Checks what a voice agent depends on, in the background, and reports it as gauges.

    Every check runs on its own interval and under its own timeout in a daemon thread: never
    in a request, never during a metric export. Results are cached; the ``voice.health.*``
    gauges, :meth:`status` and :meth:`report` only read that cache.

    Example:
        ```python
        monitor = HealthMonitor(interval=15, timeout=5)
        monitor.add_llm_provider("openai", "https://api.openai.com/v1/models")
        monitor.add_redis("redis://127.0.0.1:6379/0")
        monitor.add_database("postgresql://agent@127.0.0.1/agent")
        monitor.add_orchestrator()
        monitor.start()
        ...
        monitor.status()  # HealthState.HEALTHY / DEGRADED / UNHEALTHY
        ```

    Args:
        interval: Default seconds between the end of one check and the start of the next.
        timeout: Default seconds after which a check counts as failed.
        history: Results kept per component for its trend.
        thresholds: Default :class:`Thresholds` for checks registered without their own.
        pipeline: How failing pipeline calls degrade a provider (``None`` disables it).
        meter_provider: Where the gauges go; default: voice_otel's current meter provider.
    """

    def __init__(
        self,
        *,
        interval: float = 15.0,
        timeout: float = 5.0,
        history: int = 60,
        thresholds: Thresholds | None = None,
        pipeline: PipelineHealth | None = PipelineHealth(),  # noqa: B008 - frozen value
        meter_provider: MeterProvider | None = None,
    ) -> None:
        _positive(interval=interval, timeout=timeout, history=history)
        self.interval = interval
        self.timeout = timeout
        self.history = history
        self.thresholds = thresholds or Thresholds()
        self.pipeline = pipeline
        self._meter_provider = meter_provider
        self._lock = threading.RLock()
        self._components: dict[str, Component] = {}
        self._regs: dict[str, Registration] = {}
        self._runner = Runner("voice-otel-health", self._follow_meter_provider)
        self._attached: MeterProvider | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._orchestrators: list[OrchestratorCheck] = []
        self._watched_loop: asyncio.AbstractEventLoop | None = None

    def add_check(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        kind: str = "custom",
        critical: bool = True,
        interval: float | None = None,
        timeout: float | None = None,
        thresholds: Thresholds | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """Register any function as a check.

        The function takes no arguments and may be sync or ``async def``. It passes when it
        returns (anything but ``False``) and fails when it raises, returns ``False`` or
        exceeds its timeout. Sync functions run in a thread of their own, so they cannot block
        the other checks. Raise :class:`CheckFailed` for a clean reason.

        Args:
            name: Component name, reported as ``voice.component``.
            check: The function.
            kind: Reported as ``voice.component.kind``.
            critical: A critical component can make the overall status unhealthy; any other
                can only make it degraded.
            interval: Seconds between checks (default: the monitor's).
            timeout: Seconds before the check fails (default: the monitor's).
            thresholds: Latency and consecutive-result rules (default: the monitor's).
            secrets: Strings to mask if they ever appear in an error reason.
        """
        self._register(name, kind, check, critical, interval, timeout, thresholds, secrets)

    def add_http(
        self,
        name: str,
        url: str,
        *,
        kind: str = "http",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        healthy_status: Container[int] = SUCCESS_STATUS,
        critical: bool = True,
        interval: float | None = None,
        timeout: float | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        """Check that an HTTP endpoint answers with a healthy status (default 200-399)."""
        check = HttpCheck(
            url,
            method=method,
            headers=headers,
            healthy_status=healthy_status,
            timeout=timeout or self.timeout,
        )
        secrets = (*secrets_in(url), *(headers or {}).values())
        self._register(name, kind, check, critical, interval, timeout, thresholds, secrets)

    def add_tcp(
        self,
        name: str,
        host: str,
        port: int,
        *,
        kind: str = "tcp",
        critical: bool = True,
        interval: float | None = None,
        timeout: float | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        """Check that a TCP port accepts connections."""
        check = TcpCheck(host, port)
        self._register(name, kind, check, critical, interval, timeout, thresholds, ())

    def add_redis(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        name: str = "redis",
        critical: bool = True,
        interval: float | None = None,
        timeout: float | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        """Check that Redis answers ``PING`` (needs ``pip install voice-otel[health]``)."""
        check = RedisCheck(url, timeout=timeout or self.timeout)
        self._register(
            name, "redis", check, critical, interval, timeout, thresholds, secrets_in(url)
        )

    def add_database(
        self,
        dsn: str,
        *,
        name: str = "postgres",
        query: str = "SELECT 1",
        critical: bool = True,
        interval: float | None = None,
        timeout: float | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        """Check that PostgreSQL answers ``query`` (needs ``pip install voice-otel[health]``).

        ``dsn`` is a ``postgresql://`` URL or a libpq ``key=value`` string. Its password never
        appears in a reported reason.
        """
        check = PostgresCheck(dsn, query=query, timeout=timeout or self.timeout)
        self._register(
            name, "postgres", check, critical, interval, timeout, thresholds, secrets_in(dsn)
        )

    def add_stt_provider(self, name: str, url: str | None = None, **options: Any) -> None:
        """Watch a speech-to-text provider as component ``stt:<name>``.

        With ``url``, the provider is probed by HTTP; any answer below 500 counts as reachable
        (pass ``headers`` with your key and ``healthy_status=range(200, 300)`` to check the
        key too). Either way the provider shows degraded as soon as its pipeline calls fail.
        Providers are not critical by default: an outage degrades the service and shows on
        the gauges, but does not fail ``/health``. Options are those of :meth:`add_http`.
        """
        self._add_provider("stt", name, url, options)

    def add_llm_provider(self, name: str, url: str | None = None, **options: Any) -> None:
        """Watch an LLM provider as component ``llm:<name>``; see :meth:`add_stt_provider`."""
        self._add_provider("llm", name, url, options)

    def add_tts_provider(self, name: str, url: str | None = None, **options: Any) -> None:
        """Watch a text-to-speech provider as ``tts:<name>``; see :meth:`add_stt_provider`."""
        self._add_provider("tts", name, url, options)

    def add_livekit(self, url: str, *, name: str = "livekit", **options: Any) -> None:
        """Check a LiveKit server (``wss://host`` or ``http://host:7880``) over HTTP."""
        self.add_http(name, livekit_http_url(url), kind="livekit", **options)

    def add_orchestrator(
        self,
        *,
        name: str = "orchestrator",
        loop: asyncio.AbstractEventLoop | None = None,
        max_memory_bytes: int | None = None,
        critical: bool = True,
        interval: float | None = None,
        timeout: float = 2.0,
        thresholds: Thresholds | None = _ORCHESTRATOR_THRESHOLDS,
    ) -> None:
        """Check the agent process itself: event-loop lag and, optionally, memory.

        The check's latency is the lag of ``loop`` (set later with :meth:`watch_loop`; the
        FastAPI integration does it for the server's loop). Above 0.1 s the orchestrator is
        degraded; a loop blocked past ``timeout`` fails the check.
        """
        check = OrchestratorCheck(loop or self._watched_loop, max_memory_bytes=max_memory_bytes)
        self._register(name, "orchestrator", check, critical, interval, timeout, thresholds, ())
        self._orchestrators.append(check)

    def watch_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Measure the lag of ``loop`` in the orchestrator checks (``None`` stops measuring)."""
        self._watched_loop = loop
        for check in self._orchestrators:
            check.loop = loop

    def remove(self, name: str) -> None:
        """Stop checking a component and forget it (no-op for an unknown name)."""
        with self._lock:
            self._components.pop(name, None)
            reg = self._regs.pop(name, None)
            self._orchestrators = [
                c for c in self._orchestrators if reg is None or c is not reg.check
            ]
        if reg is not None:
            self._runner.remove(reg)

    def start(self) -> HealthMonitor:
        """Start checking in the background (idempotent). Returns the monitor."""
        with self._lock:
            if self._runner.running:
                return self
            self._follow_meter_provider()
            if self.pipeline is not None and self._unsubscribe is None:
                self._unsubscribe = add_stage_listener(self._on_stage)
            self._runner.start(list(self._regs.values()))
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the checks, close their connections and detach the gauges (idempotent)."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self._runner.stop(timeout)  # no probe runs after this, so nothing re-attaches
        with self._lock:
            attached, self._attached = self._attached, None
        if attached is not None:
            hub_for(attached).detach(self)

    @property
    def running(self) -> bool:
        """Whether the checks are running in the background."""
        return self._runner.running

    def __enter__(self) -> HealthMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def refresh(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
        """Run checks now (all, or those named) and wait for their results.

        For start-up and tests; the monitor's own schedule goes on. Call it from any thread
        except the monitor's; from async code use ``await asyncio.to_thread(monitor.refresh)``.
        """
        with self._lock:
            wanted = list(self._regs) if names is None else list(names)
            regs = [self._regs[n] for n in wanted]
        self._runner.run_now(regs, timeout)

    def components(self) -> list[ComponentHealth]:
        """Snapshots of every component, by name."""
        with self._lock:
            components = sorted(self._components.values(), key=lambda c: c.name)
        return [c.snapshot() for c in components]

    def component(self, name: str) -> ComponentHealth:
        """The snapshot of one component; ``KeyError`` if unknown."""
        with self._lock:
            component = self._components[name]
        return component.snapshot()

    def status(self) -> HealthState:
        """Overall health: the worst critical component; others count at most as degraded."""
        return _overall(self.components())

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary: overall status and every component (``/health/detailed``)."""
        components = self.components()
        return {
            "status": _overall(components).value,
            "checked_at": time.time(),
            "components": [c.as_dict() for c in components],
        }

    def _add_provider(
        self, stage: str, name: str, url: str | None, options: dict[str, Any]
    ) -> None:
        component = f"{stage}:{name}"
        options.setdefault("healthy_status", REACHABLE_STATUS)
        options.setdefault("critical", False)
        if url is not None:
            self.add_http(component, url, kind=stage, **options)
        elif self.pipeline is None:
            raise ValueError(f"{component}: without a url there is nothing to check")
        else:
            with self._lock:
                if component in self._components:
                    raise ValueError(f"a component named {component!r} is already registered")
                self._components[component] = self._new_component(
                    component, stage, bool(options["critical"]), None, probed=False
                )

    def _register(
        self,
        name: str,
        kind: str,
        check: Callable[[], Any],
        critical: bool,
        interval: float | None,
        timeout: float | None,
        thresholds: Thresholds | None,
        secrets: Iterable[str],
    ) -> None:
        if not _NAME.match(name) or not _NAME.match(kind):
            raise ValueError(
                f"invalid name or kind {name!r}/{kind!r}: letters, digits, '_.:/-', at most 100"
            )
        _callable_without_arguments(name, check)
        interval = self.interval if interval is None else interval
        timeout = self.timeout if timeout is None else timeout
        _positive(interval=interval, timeout=timeout)

        with self._lock:
            existing = self._components.get(name)
            if existing is not None and (existing.probed or name in self._regs):
                raise ValueError(f"a component named {name!r} is already registered")
            pipeline = existing.pipeline if existing is not None else None
            component = self._new_component(name, kind, critical, thresholds, probed=True)
            if pipeline is not None:
                component.pipeline = pipeline
            reg = Registration(component, check, interval, timeout, tuple(secrets))
            self._components[name] = component
            self._regs[name] = reg
        self._runner.add(reg)

    def _new_component(
        self, name: str, kind: str, critical: bool, thresholds: Thresholds | None, *, probed: bool
    ) -> Component:
        window = None
        if self.pipeline is not None and kind in ("stt", "llm", "tts"):
            window = PipelineWindow(self.pipeline)
        return Component(
            name,
            kind,
            critical=critical,
            thresholds=thresholds or self.thresholds,
            history=self.history,
            probed=probed,
            pipeline=window,
        )

    def _on_stage(self, outcome: StageOutcome) -> None:
        if outcome.outcome == "interrupted":
            return
        name = f"{outcome.stage}:{outcome.provider or 'unknown'}"
        component = self._components.get(name)
        if component is None:
            with self._lock:
                component = self._components.get(name)
                if component is None and _NAME.match(name):
                    unprobed = sum(1 for c in self._components.values() if not c.probed)
                    if unprobed >= _MAX_PIPELINE_ONLY:
                        return
                    component = self._new_component(name, outcome.stage, False, None, probed=False)
                    self._components[name] = component
        if component is not None and component.pipeline is not None:
            component.pipeline.add(outcome.outcome == "ok", outcome.error_type)

    def _follow_meter_provider(self) -> None:
        provider = self._meter_provider or _runtime.meter_provider()
        if provider is self._attached:
            return
        with self._lock:
            previous, self._attached = self._attached, provider
        if previous is not None:
            hub_for(previous).detach(self)
        hub_for(provider).attach(self)


def _overall(components: list[ComponentHealth]) -> HealthState:
    states = []
    for c in components:
        if c.state is None:
            continue
        if not c.critical and c.state is HealthState.UNHEALTHY:
            states.append(HealthState.DEGRADED)
        else:
            states.append(c.state)
    return HealthState.worst(*states)


def _callable_without_arguments(name: str, check: object) -> None:
    """Fail at registration for a check the runner could not call as ``check()``."""
    if not callable(check):
        raise TypeError(f"{name}: check must be callable, got {type(check).__name__}")
    try:
        signature = inspect.signature(check)
    except (ValueError, TypeError):
        return  # some builtins and extension types have no signature: trust them
    try:
        signature.bind()
    except TypeError as exc:
        raise TypeError(f"{name}: check must be callable without arguments ({exc})") from None


def _positive(**values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{key} must be positive, got {value!r}")
