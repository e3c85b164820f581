"""Timing, medians and the machine description shared by the benchmark sections.

Variants of one comparison run interleaved in the same process: each repetition times every
variant once, in the same order, and a ratio is taken inside each repetition before the median
over repetitions. Drift of a busy machine (other processes, frequency changes) then hits both
sides of a ratio alike. Times are process CPU time (all threads, so the span processor's export
thread is included) and wall time; on a shared machine CPU time is the steadier of the two.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Block = Callable[[int], object]  # runs the measured operation n times


@dataclass
class Timing:
    """Per-operation times of one variant over all repetitions, in nanoseconds."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    thread: list[float] = field(default_factory=list)  # CPU time of the calling thread

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def thread_median(self) -> float:
        return statistics.median(self.thread)


def time_block(block: Block, n: int) -> tuple[float, float, float]:
    """(process CPU, wall, thread CPU) ns per operation for one run of ``block(n)``."""
    gc.collect()
    cpu0, wall0, thr0 = time.process_time_ns(), time.perf_counter_ns(), time.thread_time_ns()
    block(n)
    cpu1, wall1, thr1 = time.process_time_ns(), time.perf_counter_ns(), time.thread_time_ns()
    return (cpu1 - cpu0) / n, (wall1 - wall0) / n, (thr1 - thr0) / n


def compare(variants: Mapping[str, Block], n: int, reps: int, warmup: int = 1) -> dict[str, Timing]:
    """Time every variant ``reps`` times, interleaved; ``n`` operations per timed block."""
    for block in variants.values():
        for _ in range(warmup):
            block(max(1, n // 10))
    timings = {name: Timing() for name in variants}
    for _ in range(reps):
        for name, block in variants.items():
            cpu, wall, thread = time_block(block, n)
            timings[name].cpu.append(cpu)
            timings[name].wall.append(wall)
            timings[name].thread.append(thread)
    return timings


def ratio(timings: Mapping[str, Timing], name: str, base: str, clock: str = "cpu") -> float:
    """Median over repetitions of ``name``'s time divided by ``base``'s in the same repetition."""
    a = getattr(timings[name], clock)
    b = getattr(timings[base], clock)
    return statistics.median(x / y for x, y in zip(a, b, strict=True) if y > 0)


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    packages = ("voice-otel", "opentelemetry-api", "opentelemetry-sdk")
    return {
        "machine": f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": ", ".join(f"{p} {package_version(p)}" for p in packages),
        "load average at start": load,
    }


def fmt_ns(ns: float) -> str:
    """A duration in ns, µs or ms, three significant digits."""
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def fmt_bytes(n: float) -> str:
    if abs(n) >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if abs(n) >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n:.0f} B"


@dataclass
class Row:
    """One line of the printed table."""

    section: str
    measured: str  # what was compared
    result: str  # the number(s)
    budget: str = ""
    met: bool | None = None  # None: reported, no budget

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT MET", None: ""}[self.met]


def render(rows: list[Row]) -> str:
    """The rows as a Markdown table (pasted as is into docs/performance.md)."""
    lines = [
        "| section | measured | result | budget | |",
        "| --- | --- | --- | --- | --- |",
    ]
    section = None
    for row in rows:
        shown = row.section if row.section != section else ""
        section = row.section
        lines.append(f"| {shown} | {row.measured} | {row.result} | {row.budget} | {row.verdict} |")
    return "\n".join(lines)
