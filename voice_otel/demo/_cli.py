"""``voice-otel demo``: run the demo voice agent and show what voice_otel measured."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import voice_otel
from voice_otel._cli_types import Seconds
from voice_otel._config import check_service_name
from voice_otel.demo._pipeline import DemoPlan, TurnResult
from voice_otel.demo._run import build_pipeline, run_demo

API_KEY_ENV = "VOICE_OTEL_DEMO_LLM_API_KEY"

# configure() speaks Python in its errors; say the same with the demo's options.
_CLI_SPELLING = (
    ("prometheus_port=0", "--prometheus-port 0"),
    ("prometheus_port=False", "--no-prometheus"),
    ("json_path=False", "--no-json"),
)
_CLI_NAMES = re.compile(r"\b(json_path|prometheus_port|otlp_endpoint|otlp_protocol|service_name)\b")


def _service_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # Checked here, as configure() will check it, so a bad name stops the demo before it starts.
    if not value.strip():
        raise click.BadParameter("must not be empty")
    try:
        return check_service_name("the name", value)
    except voice_otel.ConfigurationError as exc:
        raise click.BadParameter(str(exc)) from None


def _cli_hint(message: str) -> str:
    """A configure() error in the demo's own terms (``--no-json``, not ``json_path=False``)."""
    for python, option in _CLI_SPELLING:
        message = message.replace(python, option)
    return _CLI_NAMES.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)


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
@click.option("--no-json", is_flag=True, help="Write no JSON lines file.")
@click.option(
    "--prometheus-port",
    type=click.IntRange(min=0, max=65535),
    help="Port of the embedded /metrics server, 0 for any free port "
    "[default without --otlp-endpoint: 9464].",
)
@click.option("--no-prometheus", is_flag=True, help="Serve no /metrics endpoint.")
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
    callback=_service_name,
    help="service.name of the telemetry.",
)
@click.option(
    "--keep-serving",
    type=Seconds(min=0.0),
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
    no_json: bool,
    prometheus_port: int | None,
    no_prometheus: bool,
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
    if no_json and json_path:
        raise click.UsageError("--json-path and --no-json exclude each other")
    if no_prometheus and prometheus_port is not None:
        raise click.UsageError("--prometheus-port and --no-prometheus exclude each other")
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
            prometheus_port=False if no_prometheus else prometheus_port,
            json_path=False if no_json else json_path,
        )
    except voice_otel.ConfigurationError as exc:
        raise click.ClickException(_cli_hint(str(exc))) from exc
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc

    try:
        with console.status(f"talking: {turns} turns"):
            try:
                results = run_demo(DemoPlan.for_turns(turns), pipeline)
            except KeyboardInterrupt:
                # The conversation and turn spans ended as interrupted; shutdown flushes them.
                console.print(_stopped(telemetry), highlight=False)
                raise SystemExit(130) from None
        console.print(_dialogue(results))
        console.print(_table(results))
        for line in _destinations(telemetry):
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
        see = "" if quiet else "; see the table above"
        raise click.ClickException(f"every turn failed ({failed[0].error}){see}")


def _destinations(telemetry: voice_otel.Telemetry) -> list[str]:
    """Where the telemetry went, with the JSON lines file as an absolute path."""
    lines = telemetry.describe()
    path = telemetry.json_path
    if path is None or path.is_absolute():
        return lines
    # `scripts/demo` runs in the checkout, not where it was started: say where the file is.
    return [
        line.removesuffix(str(path)) + str(path.absolute()) if line.endswith(str(path)) else line
        for line in lines
    ]


def _stopped(telemetry: voice_otel.Telemetry) -> str:
    """What Ctrl-C leaves behind: the file and the collector keep it, /metrics is gone."""
    kept = []
    if telemetry.json_path is not None:
        kept.append(f"written to {telemetry.json_path.absolute()}")
    if endpoint := telemetry.settings.otlp_endpoint:
        kept.append(f"sent to {endpoint} (OTLP {telemetry.settings.otlp_protocol})")
    message = "stopped (Ctrl-C); the telemetry recorded so far is " + (
        " and ".join(kept) if kept else "not kept anywhere"
    )
    if telemetry.prometheus_url:
        message += f"; {telemetry.prometheus_url} was served only while the demo ran"
    return message


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
