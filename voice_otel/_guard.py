"""One guard for voice_otel's own faults.

Telemetry code runs inside ``with guard("what"):`` (or under ``@guarded("what")``). An exception
raised there is ours, never the user's: it is logged once per call site, with its traceback, and
dropped, so the user's pipeline goes on. In strict mode (tests, ``VOICE_OTEL_STRICT=1`` or
``configure(strict=True)``) it is re-raised so our bugs are seen.

The user's own call is never run inside a guard.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

logger = logging.getLogger("voice_otel")

P = ParamSpec("P")
R = TypeVar("R")

_strict = os.environ.get("VOICE_OTEL_STRICT", "").lower() in ("1", "true", "yes")
_seen: set[str] = set()
_seen_lock = threading.Lock()


def set_strict(strict: bool) -> None:
    """Re-raise internal faults instead of logging them (for tests)."""
    global _strict
    _strict = strict


def is_strict() -> bool:
    return _strict


def report_fault(where: str, exc: BaseException) -> None:
    """Log an internal fault once per call site; re-raise it in strict mode."""
    if _strict:
        raise exc
    with _seen_lock:
        first = where not in _seen
        _seen.add(where)
    if first:
        logger.error(
            "voice_otel internal error in %s; telemetry for this call is incomplete, "
            "your code is unaffected (further errors here are not logged)",
            where,
            exc_info=exc,
        )


@contextmanager
def guard(where: str) -> Iterator[None]:
    """Swallow and log once an exception raised by telemetry code in the block."""
    try:
        yield
    except Exception as exc:
        report_fault(where, exc)


def guarded(
    where: str, default: R | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorator form of :func:`guard`: the function returns ``default`` when it faults."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report_fault(where, exc)
                return default

        return wrapper

    return decorate


def reset_seen() -> None:
    """Forget which call sites have logged (for tests)."""
    with _seen_lock:
        _seen.clear()
