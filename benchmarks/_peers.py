"""Peers: ``logfire.instrument`` and OpenLLMetry's ``@task`` / ``@workflow`` against ``@llm``.

The peers live in their own virtual environment (they pin and patch OpenTelemetry in ways the
project's environment must not see). Each peer setup runs in its own process of that venv,
where the same stage body is timed bare, instrumented by hand, under our decorator and under the
peer's, interleaved. Every tracer provider involved exports to a discarding exporter behind a
``BatchSpanProcessor``; nothing leaves the process.

Peers are measured at their defaults (logfire records the call's arguments, OpenLLMetry its
input and output as JSON) and, for a like-for-like line, with that capture turned off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import Row, Timing, compare, fmt_ns, ratio

HERE = Path(__file__).resolve().parent
SETUPS = {
    "logfire": "logfire.instrument (default: arguments recorded)",
    "logfire-lean": "logfire.instrument(extract_args=False)",
    "traceloop-task": "OpenLLMetry @task (default: input/output recorded)",
    "traceloop-task-lean": "OpenLLMetry @task, TRACELOOP_TRACE_CONTENT=false",
    "traceloop-workflow": "OpenLLMetry @workflow (default)",
}


def _peer(setup: str, exporter: Any) -> dict[str, Any]:
    """The peer's decorated stage bodies, configured to export to ``exporter`` only."""
    import _workload as w
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if setup.startswith("logfire"):
        import logfire

        logfire.configure(
            send_to_logfire=False,
            console=False,
            service_name="bench-peer",
            additional_span_processors=[BatchSpanProcessor(exporter)],
            inspect_arguments=False,
        )
        kwargs = {"extract_args": False} if setup == "logfire-lean" else {}
        decorate = logfire.instrument("stage call", **kwargs)
    else:
        from traceloop.sdk import Traceloop
        from traceloop.sdk.decorators import task, workflow

        Traceloop.init(
            app_name="bench-peer",
            api_endpoint="http://127.0.0.1:9",  # never used with a custom exporter; loopback anyway
            exporter=exporter,
            disable_batch=False,
            telemetry_enabled=False,
            instruments=set(),
        )
        maker = workflow if setup == "traceloop-workflow" else task
        decorate = maker(name="stage_call")
    return {
        "call": decorate(w.bare_call),
        "acall": decorate(w.bare_acall),
    }


def child(setup: str, quick: bool) -> None:
    import _workload as w

    from voice_otel import _runtime

    if setup == "traceloop-task-lean":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
    tracer_provider, meter_provider, _ = w.providers()
    _runtime.use_providers(tracer_provider, meter_provider)
    raw = w.RawInstrumentation(tracer_provider, meter_provider)
    peer = _peer(setup, w.DropSpanExporter())
    variants = {
        "bare": w.loop_call(w.bare_call),
        "raw": w.loop_call(raw.call),
        "ours": w.loop_call(w.ours_call),
        "peer": w.loop_call(peer["call"]),
        "ours async": w.loop_acall(w.ours_acall),
        "peer async": w.loop_acall(peer["acall"]),
    }
    n, reps = (1_000, 5) if quick else (5_000, 9)
    t = compare(variants, n, reps)
    print(json.dumps({name: {"cpu": v.cpu, "wall": v.wall} for name, v in t.items()}))


def run(quick: bool, venv: Path) -> list[Row]:
    python = venv / "bin" / "python"
    section = "peers (per stage call)"
    if not python.exists():
        return [Row(section, "peers", f"no venv at {venv}: see benchmarks/run.py --help")]
    rows = []
    for setup, label in SETUPS.items():
        args = [str(python), str(HERE / "_peers.py"), setup] + (["--quick"] if quick else [])
        env = {**os.environ, "TRACELOOP_TELEMETRY": "false", "LOGFIRE_SEND_TO_LOGFIRE": "false"}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        out = subprocess.run(args, capture_output=True, text=True, timeout=3600, env=env)
        if out.returncode != 0:
            tail = out.stderr.strip().splitlines()[-1:] or ["?"]
            rows.append(Row(section, label, f"failed: {tail[0][:120]}"))
            continue
        data = json.loads(out.stdout.strip().splitlines()[-1])
        t = {name: Timing(cpu=v["cpu"], wall=v["wall"]) for name, v in data.items()}
        for kind, what in (("", "plain"), (" async", "coroutine")):
            r = ratio(t, f"peer{kind}", f"ours{kind}")
            rows.append(
                Row(
                    section,
                    f"{label}, {what} / @llm",
                    f"{r:.2f}x ({fmt_ns(t[f'peer{kind}'].cpu_median)} vs "
                    f"{fmt_ns(t[f'ours{kind}'].cpu_median)})",
                    "> 1x (ours cheaper)",
                    r > 1.0,
                )
            )
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    child(sys.argv[1], "--quick" in sys.argv[2:])
