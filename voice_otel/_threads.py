"""Keeping the conversation, turn and span context when work moves to another thread.

Not every way of running code in a thread copies the
context: ``asyncio.to_thread`` does, ``run_in_executor`` and ``ThreadPoolExecutor.submit`` do
not. Wrap the function with :func:`in_context` where the context would be lost.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def in_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the caller's context (current conversation, turn, stage and span).

    Example:
        >>> pool.submit(voice_otel.in_context(transcribe), audio)
        >>> await loop.run_in_executor(None, voice_otel.in_context(synthesize), text)
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return bound
