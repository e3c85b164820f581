"""The Pipecat adapter.

Here, without Pipecat: the install hint, and the tracker that maps pipeline events to
conversations, turns and stages, driven with explicit times. In the adapters venv: a real
Pipecat pipeline (``tests/adapters/pipecat_checks.py``), run as a subprocess.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import sys
import time
from typing import TYPE_CHECKING

import pytest
from adapters import harness
from adapters.harness import adapters_python, run_checks
from opentelemetry.trace import StatusCode

from voice_otel import ConfigurationError
from voice_otel.integrations._pipecat_tracker import PipecatServiceError, PipelineTracker

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Captured
    from opentelemetry.sdk.trace import ReadableSpan

    from voice_otel._runtime import Options

LLM, TTS, STT = "llm-service", "tts-service", "stt-service"


def _attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def _stages(otel: Captured, parent: ReadableSpan) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {"stt": [], "llm": [], "tts": []}
    for span in otel.stage_spans():
        if span.parent is not None and span.parent.span_id == parent.context.span_id:
            found[str(_attrs(span)["voice.stage"])].append(span)
    return found


def _exchange(tracker: PipelineTracker, t: float, *, speak: float = 0.0) -> None:
    """The user speaks at ``t``; STT, LLM and TTS answer; the bot speaks ``speak`` seconds."""
    tracker.user_started(t)
    tracker.vad_stopped(t + 1.0, t + 1.2)
    tracker.transcript(t + 1.4, "hello")
    tracker.user_stopped(t + 1.5)
    tracker.llm_started(LLM, t + 1.6, "openai", "gpt-4o-mini")
    tracker.llm_text(LLM, t + 1.9, "Hi")
    tracker.usage("llm", LLM, input_tokens=30, output_tokens=5)
    tracker.llm_ended(LLM)
    tracker.tts_started((TTS, "ctx"), t + 2.0, "cartesia", "sonic-2", None)
    tracker.tts_audio((TTS, "ctx"), t + 2.1, 2.0)
    tracker.tts_stopped((TTS, "ctx"))
    tracker.bot_started(t + 2.2)
    if speak:
        tracker.bot_stopped(t + 2.2 + speak)


def test_import_without_pipecat_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pipecat", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "voice_otel.integrations.pipecat", raising=False)
    with pytest.raises(ImportError) as raised:
        importlib.import_module("voice_otel.integrations.pipecat")
    message = str(raised.value)
    assert "pip install 'voice-otel[pipecat]'" in message
    assert "\n" not in message


def test_an_exchange_is_a_turn_with_its_stages_and_decomposed_latency(otel: Captured) -> None:
    t = time.monotonic() - 30  # events in the past, as the observer sees them
    tracker = PipelineTracker("call-1", turn_end_timeout=0)
    tracker.start()
    _exchange(tracker, t, speak=1.0)
    tracker.finish()

    conversation = otel.span("voice.conversation")
    turn = otel.span("voice.turn")
    assert turn.parent is not None and turn.parent.span_id == conversation.context.span_id
    attrs = _attrs(turn)
    assert attrs["voice.outcome"] == "ok"
    # The clock starts when the silence began (t + 1.0) and stops at the bot's first audio.
    assert attrs["voice.turn.latency"] == pytest.approx(1.2)
    assert attrs["voice.turn.latency.llm"] == pytest.approx(0.3)  # 1.6 -> first token 1.9
    assert attrs["voice.turn.latency.tts"] == pytest.approx(0.1)  # 2.0 -> first audio 2.1
    stages = _stages(otel, turn)
    assert [s.name for s in stages["stt"]] == ["speech_to_text"]
    assert [s.name for s in stages["llm"]] == ["chat gpt-4o-mini"]
    assert [s.name for s in stages["tts"]] == ["text_to_speech sonic-2"]
    assert _attrs(stages["stt"][0])["voice.stage.time_to_first_output"] == pytest.approx(0.2)
    assert _attrs(stages["llm"][0])["gen_ai.usage.input_tokens"] == 30
    assert _attrs(stages["tts"][0])["voice.usage.output_audio_seconds"] == pytest.approx(2.0)
    assert otel.total("voice.turns", {"voice.outcome": "ok"}) == 1


def test_a_barge_in_ends_the_turn_when_the_bot_falls_silent(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    _exchange(tracker, t)
    tracker.user_started(t + 3.0)  # over the bot, 0.8 s into its 2 s of audio
    tracker.interruption(t + 3.0)
    tracker.bot_stopped(t + 3.25)  # the transport stops playing
    tracker.finish()

    first, second = sorted(otel.spans("voice.turn"), key=lambda s: _attrs(s)["voice.turn.index"])
    attrs = _attrs(first)
    assert attrs["voice.outcome"] == "interrupted"
    assert attrs["voice.interruption.stop_latency"] == pytest.approx(0.25)
    assert attrs["voice.tts.wasted.audio"] == pytest.approx(2.0 - 0.8)
    assert _attrs(second)["voice.interrupted"] is False  # the next turn began with the barge-in
    assert otel.total("voice.interruptions") == 1


def test_usage_reported_before_its_stage_opens_is_kept_for_it(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.user_started(t)
    tracker.usage("tts", TTS, characters=18)  # Pipecat reports it before TTSStartedFrame
    tracker.tts_started((TTS, "ctx"), t + 1.0, "cartesia", "sonic-2", None)
    tracker.tts_stopped((TTS, "ctx"))
    tracker.finish()

    (tts,) = otel.stage_spans()
    assert _attrs(tts)["voice.usage.characters"] == 18


def test_an_unanswered_turn_fails_and_the_next_utterance_starts_a_new_one(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.user_started(t)
    tracker.user_stopped(t + 1.0)
    tracker.llm_started(LLM, t + 1.1, "openai", "gpt-4o-mini")
    tracker.error(LLM, PipecatServiceError("rate limited"))
    tracker.llm_ended(LLM)
    _exchange(tracker, t + 5.0, speak=1.0)
    tracker.finish()

    failed, answered = sorted(otel.spans("voice.turn"), key=lambda s: _attrs(s)["voice.turn.index"])
    assert _attrs(failed)["voice.outcome"] == "error"
    assert failed.status.status_code is StatusCode.ERROR
    (llm,) = _stages(otel, failed)["llm"]
    assert _attrs(llm)["error.type"] == "PipecatServiceError"
    assert _attrs(answered)["voice.outcome"] == "ok"


def test_a_cancelled_pipeline_ends_what_is_open_as_interrupted(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.user_started(t)
    tracker.user_stopped(t + 1.0)
    tracker.llm_started(LLM, t + 1.1, "openai", "gpt-4o-mini")
    tracker.cancelled()
    tracker.finish()

    assert _attrs(otel.span("voice.turn"))["voice.outcome"] == "interrupted"
    (llm,) = otel.stage_spans()
    assert _attrs(llm)["voice.outcome"] == "interrupted"
    assert otel.point("voice.conversations.active").value == 0
    # As with voice_otel.conversation(), cancellation is not an error: the conversation span
    # ends with its counts and no error status (what docs/integrations.md says).
    conversation = otel.span("voice.conversation")
    assert conversation.status.status_code is StatusCode.UNSET
    assert "voice.outcome" not in _attrs(conversation)


@pytest.mark.parametrize("cancel", [True, False])
def test_a_turn_the_pipeline_end_cuts_off_before_an_answer_is_interrupted(
    otel: Captured, cancel: bool
) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.user_started(t)  # the pipeline ends while the user is still speaking
    if cancel:
        tracker.cancelled()
    tracker.finish()

    attrs = _attrs(otel.span("voice.turn"))
    assert attrs["voice.outcome"] == "interrupted"
    assert attrs["voice.interrupted"] is False  # not a barge-in
    assert "voice.turn.latency" not in attrs
    assert otel.total("voice.turns", {"voice.outcome": "interrupted"}) == 1
    assert otel.total("voice.interruptions") == 0


def test_a_turn_whose_transcription_failed_ends_as_an_error_with_the_pipeline(
    otel: Captured,
) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.stt_service(STT, "openai", "gpt-4o-mini-transcribe")
    tracker.user_started(t)
    tracker.vad_stopped(t + 1.0, t + 1.2)
    tracker.error(STT, PipecatServiceError("connection error"))
    tracker.finish()

    turn = otel.span("voice.turn")
    assert _attrs(turn)["voice.outcome"] == "error"
    assert turn.status.status_code is StatusCode.ERROR


def test_a_text_reply_answers_a_turn_that_the_pipeline_end_closes(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.user_started(t)  # a text-only bot: no speech ever comes
    tracker.user_stopped(t + 1.0)
    tracker.llm_started(LLM, t + 1.1, "openai", "gpt-4o-mini")
    tracker.llm_text(LLM, t + 1.3, "Hi")
    tracker.llm_ended(LLM)
    tracker.finish()

    assert _attrs(otel.span("voice.turn"))["voice.outcome"] == "ok"


def test_a_reused_tracker_starts_every_run_clean(otel: Captured) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start("run-1")
    tracker.bot_started(t - 1.0)  # a greeting still playing ...
    tracker.user_started(t)  # ... and the user speaking when the call is dropped
    tracker.function_calls(1)
    tracker.cancelled()
    tracker.finish()
    otel.clear()

    tracker.start("run-2")
    _exchange(tracker, t + 5.0, speak=1.0)
    tracker.finish()

    conversation = otel.span("voice.conversation")
    assert _attrs(conversation)["voice.conversation.turns"] == 1
    turn = otel.span("voice.turn")
    assert _attrs(turn)["voice.outcome"] == "ok"
    assert _attrs(turn)["voice.turn.latency"] == pytest.approx(1.2)
    stages = _stages(otel, turn)
    assert [len(stages[k]) for k in ("stt", "llm", "tts")] == [1, 1, 1]
    assert not any(_stages(otel, conversation).values())


def test_a_second_pipeline_start_while_a_run_is_open_warns_once(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = PipelineTracker(turn_end_timeout=0)
    with caplog.at_level(logging.WARNING, "voice_otel"):
        tracker.start("worker-a")
        tracker.start("worker-a")  # the same StartFrame again: nothing to say
        assert not caplog.records
        tracker.start("worker-b")
        tracker.start("worker-c")
        tracker.not_started()
    tracker.finish()

    (record,) = caplog.records
    assert "second pipeline start" in record.getMessage()
    assert "observer of its own" in record.getMessage()
    assert len(otel.spans("voice.conversation")) == 1


def test_events_before_any_start_warn_once_that_nothing_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = PipelineTracker()
    with caplog.at_level(logging.WARNING, "voice_otel"):
        assert not tracker.running
        tracker.not_started()
        tracker.not_started()
    (record,) = caplog.records
    message = record.getMessage()
    assert "before a StartFrame" in message and "add_observer()" in message
    assert "next pipeline start" in message


@pytest.mark.parametrize("value", ["1", math.nan, math.inf, None, True, [1.0]])
def test_a_turn_end_timeout_that_is_not_a_number_fails_at_construction(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^turn_end_timeout must be a finite number"):
        PipelineTracker(turn_end_timeout=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 0, 0.5, 2])
def test_a_turn_end_timeout_may_be_any_finite_number_of_seconds(
    otel: Captured, value: float
) -> None:
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=value)
    tracker.start()
    _exchange(tracker, t, speak=1.0)  # no event loop runs here: the turn ends at once
    assert otel.spans("voice.turn")
    tracker.finish()


def test_two_pipelines_keep_their_own_conversations(otel: Captured) -> None:
    t = time.monotonic() - 30
    a = PipelineTracker("call-a", turn_end_timeout=0)
    b = PipelineTracker("call-b", turn_end_timeout=0)
    a.start()
    b.start()
    a.user_started(t)
    b.user_started(t + 0.1)
    a.llm_started(LLM, t + 1.0, "openai", "gpt-4o-mini")
    b.llm_started(LLM, t + 1.1, "openai", "gpt-4o-mini")
    b.llm_ended(LLM)
    a.llm_ended(LLM)
    a.finish()
    b.finish()

    for conversation in otel.spans("voice.conversation"):
        (turn,) = [
            s
            for s in otel.spans("voice.turn")
            if s.parent is not None and s.parent.span_id == conversation.context.span_id
        ]
        call = _attrs(conversation)["gen_ai.conversation.id"]
        assert _attrs(turn)["gen_ai.conversation.id"] == call
        assert len(_stages(otel, turn)["llm"]) == 1


def test_conversation_text_is_recorded_only_when_content_capture_is_on(
    otel: Captured, options: Options
) -> None:
    t = time.monotonic() - 30
    for capture in (False, True):
        options.capture_content = capture
        tracker = PipelineTracker(turn_end_timeout=0)
        tracker.start()
        tracker.user_started(t)
        tracker.vad_stopped(t + 1.0, t + 1.2)
        tracker.transcript(t + 1.4, "what is the weather")
        tracker.llm_started(LLM, t + 1.6, "openai", "gpt-4o-mini")
        tracker.llm_text(LLM, t + 1.9, "It is ")
        tracker.llm_text(LLM, t + 1.95, "sunny.")
        tracker.llm_ended(LLM)
        tracker.finish()
        stages = {str(_attrs(s)["voice.stage"]): _attrs(s) for s in otel.stage_spans()}
        otel.clear()
        if capture:
            assert stages["stt"]["voice.content.output"] == "what is the weather"
            assert stages["llm"]["voice.content.output"] == "It is sunny."
        else:
            assert not any("voice.content.output" in a for a in stages.values())


@pytest.mark.parametrize(
    ("segments", "spoken"),
    [
        (
            [("It is sunny outside.", False), ("A real treat.", False)],
            "It is sunny outside. A real treat.",
        ),
        ([("Hello ", False), ("there.", False), (" Bye.", False)], "Hello there. Bye."),
        ([("Hel", True), ("lo ", True), ("there.", True)], "Hello there."),
        ([("Sure.", False), ("Hel", True), ("lo.", True)], "Sure. Hello."),
        ([("", False), ("Okay.", False)], "Okay."),
    ],
)
def test_spoken_text_keeps_the_spaces_between_tts_segments(
    otel: Captured, options: Options, segments: list[tuple[str, bool]], spoken: str
) -> None:
    options.capture_content = True
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    tracker.tts_started((TTS, "ctx"), t, "cartesia", "sonic-2", None)
    for text, spaced in segments:
        tracker.tts_text((TTS, "ctx"), text, spaced)
    tracker.tts_stopped((TTS, "ctx"))
    tracker.finish()

    (tts,) = otel.stage_spans()
    assert _attrs(tts)["voice.content.input"] == spoken


def test_telemetry_switched_off_records_nothing(otel: Captured, options: Options) -> None:
    options.enabled = False
    t = time.monotonic() - 30
    tracker = PipelineTracker(turn_end_timeout=0)
    tracker.start()
    _exchange(tracker, t, speak=1.0)
    tracker.finish()
    assert otel.spans() == []


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_the_adapters_venv_the_framework_tests_skip_here_and_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    broken = tmp_path / "adapters-venv"
    broken.write_text("#!/bin/sh\necho 'PyPI unreachable' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(harness, "VENV_SCRIPT", broken)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="PyPI unreachable"):
        harness.adapters_python()


@pytest.mark.timeout(2400)
def test_a_real_pipecat_pipeline_records_conversations_turns_and_stages() -> None:
    summary = run_checks(adapters_python(), "pipecat_checks.py", rig="pipecat_rig")
    assert re.search(r"\b8 passed", summary), summary
