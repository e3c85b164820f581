"""Opt-in capture of conversation text (prompts, completions, transcripts) on stage spans.

Off by default: nothing the caller or the bot said is recorded unless ``configure(
capture_content=True)`` (or ``VOICE_OTEL_CAPTURE_CONTENT=true``). When on, text is truncated to
``content_max_length`` characters and passed through the ``redact`` hook first. Audio is never
recorded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from voice_otel import _runtime
from voice_otel._contract import Attr

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from voice_otel._stage import StageRun


class ContentBuffer:
    """Input text and streamed output text of one stage call, bounded."""

    __slots__ = ("_size", "input", "output")

    def __init__(self) -> None:
        self.input: str | None = None
        self.output: list[str] = []
        self._size = 0

    def add_output(self, text: str) -> None:
        # One character past the limit, so that prepare() sees the text was cut and marks it.
        limit = _runtime.options.content_max_length + 1
        if self._size < limit:
            self.output.append(text[: limit - self._size])
            self._size += len(self.output[-1])

    def write(self, span: Span) -> None:
        for key, text in (
            (Attr.CONTENT_INPUT, self.input),
            (Attr.CONTENT_OUTPUT, "".join(self.output) if self.output else None),
        ):
            prepared = None if text is None else prepare(text)
            if prepared is not None:
                span.set_attribute(key, prepared)


def prepare(text: str) -> str | None:
    """Redact (user hook) then truncate text for a span attribute; None if the hook raised."""
    opts = _runtime.options
    if opts.redact is not None:
        try:
            text = opts.redact(text)
        except Exception as exc:
            _redact_failed(exc)
            return None  # unredacted text is never recorded
    limit = opts.content_max_length
    return text if len(text) <= limit else text[:limit] + "…"


_redact_warned = False


def _redact_failed(exc: Exception) -> None:
    global _redact_warned
    if not _redact_warned:
        _redact_warned = True
        logger.warning(
            "voice_otel: the redact hook passed to configure() raised %s: %s; the text it was "
            "given is not recorded (further failures are not logged)",
            type(exc).__name__,
            exc,
        )


def capture_input(run: StageRun, args: tuple[Any, ...]) -> None:
    """Record the first text argument of a stage call as its input."""
    for arg in args:
        if isinstance(arg, str):
            run.record_content(input=arg)
            return
