"""In-process listeners for stage and turn outcomes (health, demo summaries, adapters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voice_otel._guard import guard

if TYPE_CHECKING:
    from voice_otel._turn import TurnRecord


@dataclass(frozen=True)
class StageOutcome:
    """How one stage call ended, handed to stage listeners."""

    stage: str
    provider: str | None
    model: str | None
    outcome: str  # ok | error | interrupted
    error_type: str | None
    duration: float


StageListener = Callable[[StageOutcome], None]
TurnListener = Callable[["TurnRecord"], None]

# Copy-on-write tuples: the hot path iterates without a lock.
_stage_listeners: tuple[StageListener, ...] = ()
_turn_listeners: tuple[TurnListener, ...] = ()


def add_stage_listener(listener: StageListener) -> Callable[[], None]:
    """Call ``listener(StageOutcome)`` whenever a stage ends; returns a function that removes it.

    Listeners run on the thread that ended the stage; keep them quick. An exception in one is
    logged once and does not reach the pipeline.
    """
    global _stage_listeners
    _stage_listeners = (*_stage_listeners, listener)

    def remove() -> None:
        global _stage_listeners
        _stage_listeners = tuple(x for x in _stage_listeners if x is not listener)

    return remove


def add_turn_listener(listener: TurnListener) -> Callable[[], None]:
    """Call ``listener(TurnRecord)`` whenever a turn ends; returns a function that removes it."""
    global _turn_listeners
    _turn_listeners = (*_turn_listeners, listener)

    def remove() -> None:
        global _turn_listeners
        _turn_listeners = tuple(x for x in _turn_listeners if x is not listener)

    return remove


def emit_stage(outcome: StageOutcome) -> None:
    for listener in _stage_listeners:
        with guard("stage listener"):
            listener(outcome)


def emit_turn(record: TurnRecord) -> None:
    for listener in _turn_listeners:
        with guard("turn listener"):
            listener(record)
