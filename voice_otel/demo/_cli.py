"""``voice-otel demo``: run the demo voice agent and show what voice_otel measured."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import voice_otel
from voice_otel.demo._pipeline import DemoPlan, TurnResult
from voice_otel.demo._run import build_pipeline, run_demo

API_KEY_ENV = "VOICE_OTEL_DEMO_LLM_API_KEY"


@click.command("demo")
@click.option(
    "--turns",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="User turns to play (the six recorded utterances repeat beyond six).",
)
@click.option(
    "--json-path",
    type=click.Path(dir_okay=False),
    help="OTLP-JSON lines file for spans and metrics "
    "[default without --otlp-endpoint: voice-otel-telemetry.jsonl].",
)
@click.option(
    "--prometheus-port",
    type=click.IntRange(min=0, max=65535),
    help="Port of the embedded /metrics server, 0 for any free port "
    "[default without --otlp-endpoint: 9464].",
)
@click.option(
    "--otlp-endpoint",
    envvar="OTEL_EXPORTER_OTLP_ENDPOINT",
    help="Ship spans and metrics to this OTLP endpoint (a collector) instead of the "
    "embedded default. [env: OTEL_EXPORTER_OTLP_ENDPOINT]",
)
@click.option(
    "--otlp-protocol",
    type=click.Choice(["grpc", "http/protobuf"]),
    help="OTLP protocol [default: grpc for port 4317, else http/protobuf].",
)
@click.option(
    "--service-name",
    default="voice-otel-demo",
    show_default=True,
    help="service.name of the telemetry.",
)
@click.option(
    "--keep-serving",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="Keep /metrics up this long after the run, for scraping.",
)
@click.option(
    "--llm-url",
    envvar="VOICE_OTEL_DEMO_LLM_URL",
    show_envvar=True,
    help="OpenAI-compatible API base (e.g. http://127.0.0.1:8000/v1); "
    f"the API key is read from {API_KEY_ENV}. Default: the local responder.",
)
@click.option(
    "--llm-model",
    envvar="VOICE_OTEL_DEMO_LLM_MODEL",
    show_envvar=True,
    help="Model to ask for at --llm-url.",
)
@click.option(
    "--llm-provider",
    envvar="VOICE_OTEL_DEMO_LLM_PROVIDER",
    show_envvar=True,
    help="gen_ai.provider.name for --llm-url (guessed from the host).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something fails.")
def demo_command(
    turns: int,
    json_path: str | None,
    prometheus_port: int | None,
    otlp_endpoint: str | None,
    otlp_protocol: str | None,
    service_name: str,
    keep_serving: float,
    llm_url: str | None,
    llm_model: str | None,
    llm_provider: str | None,
    quiet: bool,
) -> None:
    """Run a voice agent conversation (pocketsphinx -> LLM -> espeak-ng) and trace it.

    Recorded speech goes through real offline speech recognition, a streamed LLM reply and
    real offline speech synthesis, turn by turn. One turn's LLM call fails once and is retried,
    and in another the caller talks over the bot. Telemetry goes to the embedded /metrics
    server and a JSON lines file, or to a collector with --otlp-endpoint.
    """
    console = Console(quiet=quiet)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or in a CI log: Rich would assume 80 columns and fold the table into a tower.
        console = Console(quiet=quiet, width=_PIPED_WIDTH)
    try:
        with console.status("loading speech models"):
            pipeline = build_pipeline(
                llm_url, llm_model, os.environ.get(API_KEY_ENV) or None, llm_provider
            )
        telemetry = voice_otel.configure(
            service_name=service_name,
            otlp_endpoint=otlp_endpoint or None,
            otlp_protocol=otlp_protocol,
            prometheus_port=prometheus_port,
            json_path=json_path,
        )
    except (ValueError, RuntimeError, voice_otel.ConfigurationError) as exc:
        message = str(exc)
        if "prometheus_port" in message:  # the SDK speaks Python; say it as an option
            message += " (here: --prometheus-port 0 for a free port, or another port)"
        raise click.ClickException(message) from exc

    try:
        with console.status(f"talking: {turns} turns"):
            try:
                results = run_demo(DemoPlan.for_turns(turns), pipeline)
            except KeyboardInterrupt:
                # The conversation and turn spans ended as interrupted; shutdown flushes them.
                went = "; ".join(telemetry.describe())
                console.print(f"stopped (Ctrl-C); what was recorded goes to: {went}")
                raise SystemExit(130) from None
        console.print(_dialogue(results))
        console.print(_table(results))
        destinations = telemetry.describe()
        for line in destinations:
            console.print(f"telemetry -> {line}", highlight=False)
        trace_id = next((r.record.trace_id for r in results if r.record), None)
        if trace_id:
            console.print(f"trace id of the conversation: {trace_id}", highlight=False)
        if keep_serving and telemetry.prometheus_url:
            console.print(
                f"serving {telemetry.prometheus_url} for {keep_serving:g} s (Ctrl-C stops)",
                highlight=False,
            )
            _wait(keep_serving)
        elif keep_serving:
            console.print("--keep-serving: no /metrics server is running (see --prometheus-port)")
    finally:
        voice_otel.shutdown(timeout=5.0)
    failed = [r for r in results if r.error]
    if failed and len(failed) == len(results):
        # The telemetry of the failures is written, but the pipeline itself did not work.
        raise click.ClickException(f"every turn failed ({failed[0].error}); see the table above")


def _wait(seconds: float) -> None:
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        return


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _notes(result: TurnResult) -> str:
    notes = []
    if result.llm_errors:
        first = result.llm_errors[0].split(":")[0]
        outcome = "retried" if result.error is None else "failed"
        notes.append(f"LLM {outcome} ({first})")
    if result.barged_in:
        notes.append(f"barge-in after {result.played_seconds:.1f} s of bot audio")
    if result.error:
        notes.append(result.error)
    return "; ".join(notes)


_PIPED_WIDTH = 160


def _table(results: Sequence[TurnResult]) -> Table:
    table = Table(
        title="voice-otel demo: what each turn measured",
        caption="voice-to-voice = user stopped speaking -> first bot audio; "
        "STT decodes the whole utterance after it ends",
    )
    table.add_column("turn", justify="right")
    table.add_column("transcript (pocketsphinx)")
    for name in ("STT s", "LLM first token s", "TTS first byte s", "voice-to-voice s"):
        table.add_column(name, justify="right")
    table.add_column("interrupted")
    table.add_column("cost $", justify="right")
    table.add_column("notes")
    for result in results:
        record = result.record
        if record is None:
            table.add_row(str(result.number), result.heard, "-", "-", "-", "-", "-", "-", "")
            continue
        table.add_row(
            str(result.number),
            result.heard or "(nothing heard)",
            _seconds(record.stt_duration),
            _seconds(record.llm_time_to_first_token),
            _seconds(record.tts_time_to_first_byte),
            _seconds(record.latency),
            "yes" if record.interrupted else "no",
            f"{record.cost:.6f}",
            _notes(result),
        )
    return table


def _dialogue(results: Sequence[TurnResult]) -> str:
    lines = []
    for result in results:
        lines.append(f"[bold]{result.number}[/] caller said  : {escape(result.said)}")
        lines.append(f"  pocketsphinx heard: {escape(result.heard) or '(nothing)'}")
        reply = escape(result.reply.strip()) or "(no reply)"
        cut = " [dim](interrupted)[/]" if result.barged_in else ""
        lines.append(f"  bot answered      : {reply}{cut}")
    return "\n".join(lines)
