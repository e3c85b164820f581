"""voice-otel overhead, failure-mode and load benchmarks; prints one table.

Usage::

    python benchmarks/run.py            # everything except the peers
    python benchmarks/run.py --quick    # fewer repetitions, shorter windows (a smoke run)
    python benchmarks/run.py --peers    # also logfire and OpenLLMetry, from their own venv
    python benchmarks/run.py --only calls,items,disabled

Sections: ``calls`` (per stage call against the raw SDK by hand), ``items`` (per streamed
item), ``disabled`` (telemetry off), ``export`` (collector up, down, or accepting and never
answering), ``idle`` (configure() with health monitor and system metrics, doing nothing),
``load`` (200 concurrent conversations through the collector), ``peers``.

Comparisons run side by side in one process and are reported as ratios of medians (see
``_harness``). The peers run in a separate virtual environment (``--peer-venv``, default
``~/.cache/voice-otel/bench-venv``) so they never touch the project's; docs/performance.md
says how to create it (OpenLLMetry's dependencies need pins to resolve).

Nothing here is collected by pytest; nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
from _harness import Row, render

SECTIONS = ("calls", "items", "disabled", "export", "idle", "load", "peers")
DEFAULT_VENV = Path.home() / ".cache" / "voice-otel" / "bench-venv"


def _section(name: str, quick: bool, args: argparse.Namespace) -> list[Row]:
    if name in ("calls", "items", "disabled"):
        import _overhead

        plan = _overhead.QUICK if quick else _overhead.FULL
        fn: Callable[[_overhead.Plan], list[Row]] = {
            "calls": _overhead.stage_calls,
            "items": _overhead.streamed_items,
            "disabled": _overhead.disabled,
        }[name]
        return fn(plan)
    if name == "export":
        import _export

        return _export.run(quick)
    if name == "idle":
        import _idle

        return _idle.run(quick)
    if name == "load":
        import _load

        return _load.run(quick)
    if name == "peers":
        import _peers

        return _peers.run(quick, Path(args.peer_venv))
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter runs")
    parser.add_argument("--peers", action="store_true", help="also measure logfire, OpenLLMetry")
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--peer-venv", default=str(DEFAULT_VENV), help="venv with the peers")
    args = parser.parse_args(argv)

    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s): {', '.join(unknown)}")
    else:
        wanted = [s for s in SECTIONS if s != "peers" or args.peers]

    # The failure-mode sections make the exporters log every failed export; the table is the
    # output here.
    logging.basicConfig(level=logging.CRITICAL)

    for key, value in _harness.machine().items():
        print(f"{key}: {value}")
    print(f"command: python benchmarks/run.py {' '.join(argv or sys.argv[1:])}".rstrip())
    print()

    rows: list[Row] = []
    for name in wanted:
        started = time.monotonic()
        print(f"... {name}", file=sys.stderr, flush=True)
        rows.extend(_section(name, args.quick, args))
        print(f"... {name} took {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    print(render(rows))
    missed = [r for r in rows if r.met is False]
    if missed:
        print(f"\n{len(missed)} budget(s) not met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
