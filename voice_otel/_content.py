"""Opt-in capture of conversation text (prompts, completions, transcripts) on stage spans.

Off by default: nothing the caller or the bot said is recorded unless ``configure(
capture_content=True)`` (or ``VOICE_OTEL_CAPTURE_CONTENT=true``). When on, text is truncated to
``content_max_length`` characters and passed through the ``redact`` hook first. Audio is never
recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voice_otel import _runtime
from voice_otel._contract import Attr

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
        if self.input is not None:
            span.set_attribute(Attr.CONTENT_INPUT, prepare(self.input))
        if self.output:
            span.set_attribute(Attr.CONTENT_OUTPUT, prepare("".join(self.output)))


def prepare(text: str) -> str:
    """Redact (user hook) then truncate text for a span attribute."""
    opts = _runtime.options
    if opts.redact is not None:
        text = opts.redact(text)
    limit = opts.content_max_length
    return text if len(text) <= limit else text[:limit] + "…"


def capture_input(run: StageRun, args: tuple[Any, ...]) -> None:
    """Record the first text argument of a stage call as its input."""
    for arg in args:
        if isinstance(arg, str):
            run.record_content(input=arg)
            return
