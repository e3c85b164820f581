"""Per stage call, per streamed item and disabled telemetry: our decorator against the others."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import _workload as w
from _harness import Block, Row, Timing, compare, fmt_ns, ratio

from voice_otel import _runtime

STREAM_CALL_ITEMS = 3  # a short stream, for the per-call comparison
CHUNK = "chunk"


@dataclass(frozen=True)
class Plan:
    calls: int  # operations per timed block
    items: int  # items per stream in the per-item comparison
    reps: int


QUICK = Plan(calls=2_000, items=20_000, reps=5)
FULL = Plan(calls=10_000, items=100_000, reps=11)


def _vs(t: dict[str, Timing], name: str, base: str) -> str:
    return (
        f"{ratio(t, name, base):.2f}x ({fmt_ns(t[name].cpu_median)} vs "
        f"{fmt_ns(t[base].cpu_median)})"
    )


def stage_calls(plan: Plan) -> list[Row]:
    """One stage call: bare, by hand with the raw SDK, and decorated, in each function kind."""
    tracer_provider, meter_provider, _ = w.providers()
    _runtime.use_providers(tracer_provider, meter_provider)
    raw = w.RawInstrumentation(tracer_provider, meter_provider)
    n = STREAM_CALL_ITEMS
    variants = {
        "bare": w.loop_call(w.bare_call),
        "raw": w.loop_call(raw.call),
        "raw span only": w.loop_call(raw.span_only),
        "ours": w.loop_call(w.ours_call),
        "bare async": w.loop_acall(w.bare_acall),
        "raw async": w.loop_acall(raw.acall),
        "ours async": w.loop_acall(w.ours_acall),
        "bare gen": w.loop_stream(w.bare_stream, n),
        "raw gen": w.loop_stream(raw.stream, n),
        "ours gen": w.loop_stream(w.ours_stream, n),
        "bare agen": w.loop_astream(w.bare_astream, n),
        "raw agen": w.loop_astream(raw.astream, n),
        "ours agen": w.loop_astream(w.ours_astream, n),
    }
    try:
        t = compare(variants, plan.calls, plan.reps)
    finally:
        _runtime.use_providers(None, None)
        tracer_provider.shutdown()
        meter_provider.shutdown()

    section = "per stage call"
    budget = "<= 1.2x raw SDK"
    rows = [
        Row(section, "bare function (the stage body alone)", fmt_ns(t["bare"].cpu_median)),
        Row(
            section,
            "raw SDK by hand: span + 2 histogram records",
            f"{fmt_ns(t['raw'].cpu_median)} ({_added(t, 'raw', 'bare')} over bare)",
        ),
        Row(
            section,
            "raw SDK by hand: the span alone, no metric records",
            f"{fmt_ns(t['raw span only'].cpu_median)} "
            f"({_added(t, 'raw span only', 'bare')} over bare)",
        ),
    ]
    for kind, label in (
        ("", "plain function"),
        (" async", "coroutine"),
        (" gen", f"generator, {n} items"),
        (" agen", f"async generator, {n} items"),
    ):
        r = ratio(t, f"ours{kind}", f"raw{kind}")
        measured = _vs(t, f"ours{kind}", f"raw{kind}")
        rows.append(Row(section, f"@llm {label} / raw SDK", measured, budget, r <= 1.2))
    return rows


def _added(t: dict[str, Timing], name: str, base: str) -> str:
    return fmt_ns(t[name].cpu_median - t[base].cpu_median)


async def bare_items(count: int) -> AsyncIterator[str]:
    for _ in range(count):
        yield CHUNK


def bare_sync_items(count: int) -> Iterator[str]:
    for _ in range(count):
        yield CHUNK


ours_items = w.decorated(bare_items)
ours_sync_items = w.decorated(bare_sync_items)


def streamed_items(plan: Plan) -> list[Row]:
    """Per item of a long stream: a bare (async) generator against the decorated one."""
    tracer_provider, meter_provider, _ = w.providers()
    _runtime.use_providers(tracer_provider, meter_provider)

    def astream(fn: object) -> Block:
        return lambda n: w.drain_async(fn(n))  # type: ignore[operator]

    def stream(fn: object) -> Block:
        def block(n: int) -> None:
            for _ in fn(n):  # type: ignore[operator]
                pass

        return block

    variants = {
        "bare agen": astream(bare_items),
        "ours agen": astream(ours_items),
        "bare gen": stream(bare_sync_items),
        "ours gen": stream(ours_sync_items),
    }
    try:
        t = compare(variants, plan.items, plan.reps)
    finally:
        _runtime.use_providers(None, None)
        tracer_provider.shutdown()
        meter_provider.shutdown()
    section = "per streamed item"
    r = ratio(t, "ours agen", "bare agen")
    return [
        Row(
            section,
            f"@llm async generator / bare, {plan.items:,} items",
            _vs(t, "ours agen", "bare agen"),
            "<= 3x bare",
            r <= 3.0,
        ),
        Row(
            section,
            f"@llm generator / bare, {plan.items:,} items",
            _vs(t, "ours gen", "bare gen"),
        ),
    ]


def empty(text: str) -> str:
    return text


ours_empty = w.decorated(empty)


def disabled(plan: Plan) -> list[Row]:
    """``options.enabled = False``: the decorator against the bare function."""
    variants = {
        "bare": w.loop_call(w.bare_call),
        "ours": w.loop_call(w.ours_call),
        "bare async": w.loop_acall(w.bare_acall),
        "ours async": w.loop_acall(w.ours_acall),
        "bare empty": w.loop_call(empty),
        "ours empty": w.loop_call(ours_empty),
    }
    before = _runtime.options.enabled
    _runtime.options.enabled = False
    try:
        t = compare(variants, plan.calls * 10, plan.reps)
    finally:
        _runtime.options.enabled = before
    section = "telemetry disabled"
    r = ratio(t, "ours", "bare")
    ra = ratio(t, "ours async", "bare async")
    return [
        Row(section, "@llm plain function / bare", _vs(t, "ours", "bare"), "<= 1.05x", r <= 1.05),
        Row(
            section,
            "@llm coroutine / bare",
            _vs(t, "ours async", "bare async"),
            "<= 1.05x",
            ra <= 1.05,
        ),
        Row(
            section,
            "@llm on an empty function / bare (the wrapper's own cost)",
            f"{_vs(t, 'ours empty', 'bare empty')}, +{_added(t, 'ours empty', 'bare empty')}",
        ),
    ]
