"""The monitor's engine: a daemon thread running an asyncio loop, one task per check.

Each check runs on its own schedule and under its own timeout, so a slow, raising or hanging
check only ever affects its own component. Synchronous checks run in a daemon thread each, at
most one at a time per check: a check that never returns occupies one thread, not a pool, and
cannot keep the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from voice_otel._guard import report_fault
from voice_otel.health._checks import CheckFailed
from voice_otel.health._component import Component
from voice_otel.health._sanitize import sanitize_reason
from voice_otel.health._types import HealthState

logger = logging.getLogger(__name__)

CheckFunction = Callable[[], Any]

# At stop, a check that swallows its cancellation is cancelled again this often until the
# stop timeout runs out.
_RECANCEL_EVERY = 0.05


@dataclass(eq=False)
class Registration:
    """A component's probe and its schedule."""

    component: Component
    check: CheckFunction
    interval: float
    timeout: float
    secrets: tuple[str, ...] = ()
    is_async: bool = field(init=False)
    busy_since: float | None = None  # a synchronous run still in its thread
    lock: asyncio.Lock | None = None
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        call = getattr(self.check, "__call__", None)  # noqa: B004 - callable objects too
        self.is_async = inspect.iscoroutinefunction(self.check) or inspect.iscoroutinefunction(call)


class Runner:
    """Owns the loop thread; schedules, times out and records checks."""

    def __init__(self, name: str, before_probe: Callable[[], None]) -> None:
        self._name = name
        self._before_probe = before_probe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._regs: set[Registration] = set()
        self._closing: set[asyncio.Task[None]] = set()
        # Async checks still running, also timed-out ones, with their component names.
        self._inflight: dict[asyncio.Future[Any], str] = {}
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self, registrations: Iterable[Registration]) -> None:
        with self._lock:
            if self._loop is not None:
                return
            # Whatever a previous run left behind belongs to its closed loop: never touch it.
            self._regs, self._closing, self._inflight = set(), set(), {}
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._main, args=(loop, ready), name=self._name, daemon=True
            )
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
        for reg in registrations:
            self.add(reg)

    def add(self, reg: Registration) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._spawn, reg)

    def remove(self, reg: Registration) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._cancel, reg)

    def run_now(self, registrations: list[Registration], timeout: float) -> None:
        """Run these checks once, now, and wait for them (from any thread but the loop's)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the health monitor is not running; call start() first")

        async def all_once() -> None:
            await asyncio.gather(*(self._run_once(reg) for reg in registrations))

        asyncio.run_coroutine_threadsafe(all_once(), loop).result(timeout)

    def stop(self, timeout: float) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop).result(timeout + 1)
        except Exception as exc:  # a check that ignores cancellation must not block shutdown
            logger.warning("health monitor did not stop cleanly: %s", sanitize_reason(exc))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()

    def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def _spawn(self, reg: Registration) -> None:
        if reg in self._regs:
            return
        self._regs.add(reg)
        reg.lock = asyncio.Lock()
        reg.task = asyncio.get_running_loop().create_task(self._every(reg))

    def _cancel(self, reg: Registration) -> None:
        self._regs.discard(reg)
        if reg.task is not None:
            reg.task.cancel()
            reg.task = None
        closer = getattr(reg.check, "aclose", None)
        if closer is not None:
            task = asyncio.get_running_loop().create_task(_close_quietly(reg, closer))
            self._closing.add(task)  # keep a reference until it is done
            task.add_done_callback(self._closing.discard)

    async def _shutdown(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # This run's containers: start() gives a later run new ones, which this must not touch.
        regs, inflight = self._regs, self._inflight
        try:
            tasks = [reg.task for reg in regs if reg.task is not None]
            await _cancel_until_done(tasks, deadline)

            # Let cancelled checks finish their own cleanup (closing connections) on this loop.
            for future in await _cancel_until_done(inflight, deadline):
                logger.warning(
                    "health check %s ignored cancellation; abandoned when the monitor stopped",
                    inflight[future],
                )
                # Named above; asyncio need not log it again, anonymously, when it is collected.
                # A private attribute of asyncio futures (CPython 3.11-3.14): nothing else stops it.
                future._log_destroy_pending = False  # type: ignore[attr-defined]

            for reg in regs:
                closer = getattr(reg.check, "aclose", None)
                if closer is not None:
                    remaining = max(deadline - loop.time(), _RECANCEL_EVERY)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_close_quietly(reg, closer), remaining)
        finally:
            regs.clear()
            inflight.clear()

    async def _every(self, reg: Registration) -> None:
        while True:
            await self._run_once(reg)
            await asyncio.sleep(reg.interval)

    async def _run_once(self, reg: Registration) -> None:
        assert reg.lock is not None
        async with reg.lock:
            try:
                self._before_probe()
                ok, latency, reason = await self._probe(reg)
                before = reg.component.probe_state
                after = reg.component.record(ok, latency, reason)
                _log_transition(reg.component, before, after)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # our own fault: keep the schedule going
                report_fault("health check runner", exc)

    async def _probe(self, reg: Registration) -> tuple[bool, float, str | None]:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()

        if reg.is_async:
            try:
                pending: asyncio.Future[Any] = asyncio.ensure_future(reg.check())
            except Exception as exc:
                return False, time.perf_counter() - start, _reason(exc, reg.secrets)
            self._inflight[pending] = reg.component.name
            pending.add_done_callback(lambda f: self._inflight.pop(f, None))
        else:
            busy_since = reg.busy_since
            if busy_since is not None:
                # Its latency is how long the stuck run has taken so far, not 0.
                stuck = start - busy_since
                return False, stuck, f"previous run still running after {stuck:.0f}s"
            pending = loop.create_future()
            reg.busy_since = start
            threading.Thread(
                target=_call_in_thread,
                args=(reg, pending, loop),
                name=f"{self._name}-{reg.component.name}",
                daemon=True,
            ).start()

        try:
            done, _ = await asyncio.wait({pending}, timeout=reg.timeout)
        finally:
            if not pending.done():
                pending.cancel()
                # Whatever a cancelled check raises later is retrieved here, not logged.
                pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        latency = time.perf_counter() - start

        if not done:
            return False, latency, f"timed out after {reg.timeout:g}s"
        if pending.cancelled():
            return False, latency, "cancelled"
        error = pending.exception()
        if error is not None:
            return False, latency, _reason(error, reg.secrets)
        if pending.result() is False:
            return False, latency, "check returned False"
        return True, latency, None


def _call_in_thread(
    reg: Registration, pending: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
) -> None:
    outcome: tuple[Any, BaseException | None]
    try:
        result = reg.check()
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise CheckFailed("a synchronous check returned an awaitable; declare it async def")
        outcome = (result, None)
    except BaseException as exc:
        outcome = (None, exc)
    finally:
        reg.busy_since = None

    def settle() -> None:
        if pending.done():
            return  # timed out earlier; the late result is dropped
        if outcome[1] is not None:
            pending.set_exception(outcome[1])
        else:
            pending.set_result(outcome[0])

    with contextlib.suppress(RuntimeError):  # the monitor stopped while this check ran
        loop.call_soon_threadsafe(settle)


async def _cancel_until_done(
    futures: Iterable[asyncio.Future[Any]], deadline: float
) -> set[asyncio.Future[Any]]:
    """Cancel ``futures`` and wait for them until ``deadline``; returns those still running.

    Cancellation is repeated: two cancels before a task runs count as one, so a check that
    swallows a single ``CancelledError`` would otherwise run on until the deadline.
    """
    loop = asyncio.get_running_loop()
    pending = {f for f in futures if not f.done()}
    while pending:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        for future in pending:
            future.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(remaining, _RECANCEL_EVERY))
    return pending


async def _close_quietly(reg: Registration, closer: Callable[[], Any]) -> None:
    try:
        await closer()
    except Exception as exc:
        logger.debug("closing check %s failed: %s", reg.component.name, sanitize_reason(exc))


def _reason(exc: BaseException, secrets: tuple[str, ...]) -> str:
    if isinstance(exc, CheckFailed):
        return sanitize_reason(str(exc) or "check failed", secrets)
    return sanitize_reason(exc, secrets)


def _log_transition(component: Component, before: HealthState | None, after: HealthState) -> None:
    if before is after:
        return
    if after is HealthState.HEALTHY:
        logger.info("health: %s is healthy", component.name)
    else:
        logger.warning(
            "health: %s is %s (%s)", component.name, after.value, component.last_error or "slow"
        )
