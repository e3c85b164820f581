"""The ``stt``, ``llm`` and ``tts`` decorators.

The wrapper kind (plain, coroutine, generator, async generator) and every static attribute are
decided once, at decoration time. Per call: start the stage (guarded), run the user's function
exactly once (unguarded), finish in ``finally`` (guarded). The user's result and exception pass
through as the same objects; cancellation passes straight through and is recorded as
"interrupted", not as an error.

Streams: the span starts at the first iteration and covers the stream until it is exhausted,
closed (barge-in), abandoned (garbage-collected) or cancelled. The stage's OpenTelemetry context
is attached only while the user's generator runs, never across a ``yield``, so nothing leaks
into the consumer and nothing fails to detach.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, overload

from voice_otel import _runtime
from voice_otel._guard import report_fault
from voice_otel._stage import StageRun, StageSpec, attach_context, begin, detach_context

F = TypeVar("F", bound=Callable[..., Any])
_options = _runtime.options


def _wrap(fn: Callable[..., Any], spec: StageSpec) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_gen(fn, spec)
    if inspect.iscoroutinefunction(fn):
        return _wrap_coroutine(fn, spec)
    if inspect.isgeneratorfunction(fn):
        return _wrap_gen(fn, spec)
    return _wrap_plain(fn, spec)


def _wrap_plain(fn: Callable[..., Any], spec: StageSpec) -> Callable[..., Any]:
    per_result = spec.usage is not None  # the result goes to the usage extractor

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _options.enabled:
            # Without keywords, the plain call skips unpacking an empty dict: this path is all
            # that disabled telemetry costs.
            return fn(*args, **kwargs) if kwargs else fn(*args)
        run = begin(spec, args)
        if run is None:
            return fn(*args, **kwargs)
        token = attach_context(run.context)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _leave(token)
            run.finish(exc)
            raise
        _leave(token)
        if per_result or _options.capture_content:
            _on_result(run, result)
        run.finish()
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], spec: StageSpec) -> Callable[..., Any]:
    per_result = spec.usage is not None  # the result goes to the usage extractor

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _options.enabled:
            return await (fn(*args, **kwargs) if kwargs else fn(*args))
        run = begin(spec, args)
        if run is None:
            return await fn(*args, **kwargs)
        # Inside a coroutine the attach and detach happen in this task's own context, so it is
        # safe to keep the stage context attached across the await.
        token = attach_context(run.context)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _leave(token)
            run.finish(exc)
            raise
        _leave(token)
        if per_result or _options.capture_content:
            _on_result(run, result)
        run.finish()
        return result

    return wrapper


def _wrap_gen(fn: Callable[..., Any], spec: StageSpec) -> Callable[..., Any]:
    per_item = spec.usage is not None  # every item goes to the usage extractor

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if not _options.enabled:
            return (yield from fn(*args, **kwargs))
        run = begin(spec, args)
        if run is None:
            return (yield from fn(*args, **kwargs))
        if run.turn is not None:
            run.turn.stream_started(run)
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        ctx = run.context
        step: Callable[[Any], Any] = gen.send
        value: Any = None
        while True:
            token = attach_context(ctx)
            try:
                item = step(value)
            except StopIteration as stop:
                _leave(token)
                run.finish()
                return stop.value
            except BaseException as exc:
                _leave(token)
                run.finish(exc)
                raise
            try:  # _leave(token), inline: this runs once per streamed item
                detach_context(token)
            except Exception as exc:
                report_fault("stage context", exc)
            if run.items and not (per_item or _options.capture_content):
                run.items += 1  # after the first item, counting is all there is to do
            else:
                _on_item(run, item)
            try:
                value = yield item
                step = gen.send
            except GeneratorExit:
                # Closed by the consumer or garbage-collected: a barge-in, not an error.
                token = attach_context(ctx)
                try:
                    gen.close()
                finally:
                    _leave(token)
                    run.finish(interrupted=True)
                raise
            except BaseException as exc:
                step, value = gen.throw, exc

    return wrapper


def _wrap_async_gen(fn: Callable[..., Any], spec: StageSpec) -> Callable[..., Any]:
    per_item = spec.usage is not None  # every item goes to the usage extractor

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        if not _options.enabled:
            async for item in fn(*args, **kwargs):
                yield item
            return
        run = begin(spec, args)
        if run is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        if run.turn is not None:
            run.turn.stream_started(run)
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        ctx = run.context
        step: Callable[[Any], Any] = agen.asend
        value: Any = None
        while True:
            token = attach_context(ctx)
            try:
                item = await step(value)
            except StopAsyncIteration:
                _leave(token)
                run.finish()
                return
            except BaseException as exc:
                _leave(token)
                run.finish(exc)
                raise
            try:  # _leave(token), inline: this runs once per streamed item
                detach_context(token)
            except Exception as exc:
                report_fault("stage context", exc)
            if run.items and not (per_item or _options.capture_content):
                run.items += 1  # after the first item, counting is all there is to do
            else:
                _on_item(run, item)
            try:
                value = yield item
                step = agen.asend
            except GeneratorExit:
                token = attach_context(ctx)
                try:
                    await agen.aclose()
                finally:
                    _leave(token)
                    run.finish(interrupted=True)
                raise
            except BaseException as exc:
                step, value = agen.athrow, exc

    return wrapper


def _leave(token: Any) -> None:
    try:
        detach_context(token)
    except Exception as exc:
        report_fault("stage context", exc)


def _on_result(run: StageRun, result: Any) -> None:
    try:
        run.on_result(result)
    except Exception as exc:
        report_fault("stage result", exc)


def _on_item(run: StageRun, item: Any) -> None:
    try:
        run.on_item(item)
    except Exception as exc:
        report_fault("stream item", exc)


def _make(stage: str) -> Any:
    @overload
    def decorator(fn: F, /) -> F: ...

    @overload
    def decorator(
        *,
        provider: str | None = None,
        model: str | None = None,
        voice: str | None = None,
        usage: Callable[[Any], Any] | None = None,
        **attributes: Any,
    ) -> Callable[[F], F]: ...

    def decorator(
        fn: F | None = None,
        /,
        *,
        provider: str | None = None,
        model: str | None = None,
        voice: str | None = None,
        usage: Callable[[Any], Any] | None = None,
        **attributes: Any,
    ) -> F | Callable[[F], F]:
        def decorate(f: F) -> F:
            if isinstance(f, staticmethod | classmethod):
                # Placed above @staticmethod / @classmethod: wrap the function, keep the binding.
                inner: Any = f.__func__
                return type(f)(decorate(inner))
            spec = StageSpec(
                stage, provider, model, voice, usage, attributes, getattr(f, "__qualname__", "")
            )
            return _wrap(f, spec)  # type: ignore[return-value]

        return decorate(fn) if fn is not None else decorate

    return decorator


stt = _make("stt")
stt.__doc__ = """Trace a speech-to-text call: ``@stt`` or ``@stt(provider=..., model=...)``.

Works on plain functions, coroutines, generators (streaming partial transcripts) and async
generators, methods included. ``usage=`` takes a function of the result (or of each streamed
item) returning a dict such as ``{"input_audio_seconds": 3.2}``.
"""
llm = _make("llm")
llm.__doc__ = """Trace an LLM call: ``@llm`` or ``@llm(provider="openai", model="gpt-4o-mini")``.

For a generator or async generator the first item is the time to first token.
"""
tts = _make("tts")
tts.__doc__ = """Trace a text-to-speech call: ``@tts`` or ``@tts(provider=..., voice=...)``.

For a streaming TTS the first chunk is the time to first byte, and marks when the bot starts
speaking in the current turn.
"""
