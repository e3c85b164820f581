"""The span processor ``configure()`` installs: the SDK's batch processor, cheap when full.

When the collector is down or does not answer, the export queue fills up and every further span
is dropped. The SDK's processor builds a log record for each of those drops (only to have its
duplicate filter discard it), which makes a span ended while the collector is away several
times dearer to drop than to queue. This subclass drops it with one length check instead, counts
it (in ``dropped`` and in the SDK's own processor metrics, when those are enabled), and warns at
the 1st, 10th, 100th, ... drop, so the application neither slows down nor floods its log when the
collector goes away. Where the SDK drops the oldest queued span, this drops the newest: either
way one span is lost, and the queue keeps the spans that were waiting longest.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor as _SdkBatchSpanProcessor

logger = logging.getLogger(__name__)


class BatchSpanProcessor(_SdkBatchSpanProcessor):
    """``opentelemetry.sdk.trace.export.BatchSpanProcessor`` with a cheap path for a full queue.

    ``dropped`` counts the spans dropped because the queue was full.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0
        self._next_warning = 1
        # The SDK keeps its queue and its metrics in private attributes; without the queue, every
        # span goes the SDK's own way (correct, only dearer when full).
        batch = getattr(self, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        self._queue: deque[Any] | None = (
            queue if isinstance(queue, deque) and queue.maxlen else None
        )
        drop_items = getattr(getattr(batch, "_metrics", None), "drop_items", None)
        self._drop_items: Callable[[int], None] | None = (
            drop_items if callable(drop_items) else None
        )

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if queue is not None and len(queue) >= queue.maxlen:  # type: ignore[operator]
            if not (span.context and span.context.trace_flags.sampled):
                return  # never exported: not a drop
            self.dropped += 1
            if self._drop_items is not None:
                self._drop_items(1)
            if self.dropped >= self._next_warning:
                self._next_warning *= 10
                logger.warning(
                    "voice_otel: the span export queue is full (%d spans), %d spans dropped so "
                    "far; is the collector reachable?",
                    queue.maxlen,
                    self.dropped,
                )
            return
        super().on_end(span)
