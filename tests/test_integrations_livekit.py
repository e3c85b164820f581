"""The LiveKit Agents adapter.

Here, without LiveKit: the install hint, and the tracker that maps session events and LiveKit's
per-request metrics to conversations, turns and stages, driven with explicit times. In the
adapters venv: a real ``AgentSession`` (``tests/adapters/livekit_checks.py``), as a subprocess.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from adapters.harness import adapters_python, run_checks

from voice_otel.integrations._livekit_tracker import SessionTracker

if TYPE_CHECKING:
    from conftest import Captured
    from opentelemetry.sdk.trace import ReadableSpan

    from voice_otel._runtime import Options

LLM = {"provider": "OpenAI", "model": "gpt-4o-mini"}
TTS = {"provider": "cartesia", "model": "sonic-2"}
STT = {"provider": "deepgram", "model": "nova-3"}


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _turns(otel: Captured) -> list[ReadableSpan]:
    return sorted(otel.spans("voice.turn"), key=lambda s: _attrs(s)["voice.turn.index"])


def _stages(otel: Captured, parent: ReadableSpan) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {"stt": [], "llm": [], "tts": []}
    for span in otel.stage_spans():
        if span.parent is not None and span.parent.span_id == parent.context.span_id:
            found[str(_attrs(span)["voice.stage"])].append(span)
    return found


def _exchange(tracker: SessionTracker, t: float, *, interrupted: bool = False) -> None:
    """The user speaks at ``t`` for a second; the agent answers, starting at ``t + 2.0``.

    Reports arrive as LiveKit sends them: each request's metrics at its end.
    """
    tracker.user_started(t)
    tracker.user_stopped(t + 1.0)
    tracker.stt_metrics(ended_at=t + 1.45, duration=0.15, audio_seconds=1.2, streamed=False, **STT)
    tracker.transcript(t + 1.45)
    tracker.user_message(t + 1.0)
    tracker.speech_created("speech-1")
    tracker.agent_state("thinking", t + 1.5)
    tracker.llm_metrics(
        ended_at=t + 1.9,
        duration=0.4,
        ttft=0.3,
        cancelled=False,
        input_tokens=30,
        output_tokens=5,
        speech_id="speech-1",
        **LLM,
    )
    tracker.tts_metrics(
        ended_at=t + 2.0,
        duration=0.15,
        ttfb=0.1,
        cancelled=False,
        characters=18,
        audio_seconds=2.0,
        speech_id="speech-1",
        **TTS,
    )
    tracker.agent_state("speaking", t + 2.0)


def test_import_without_livekit_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "livekit", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "voice_otel.integrations.livekit", raising=False)
    with pytest.raises(ImportError) as raised:
        importlib.import_module("voice_otel.integrations.livekit")
    message = str(raised.value)
    assert "pip install 'voice-otel[livekit]'" in message
    assert "\n" not in message


def test_a_turn_is_recorded_when_the_agent_is_done_not_when_the_session_ends(
    otel: Captured,
) -> None:
    t = time.time() - 30
    tracker = SessionTracker("room-1")
    tracker.start()
    _exchange(tracker, t)
    tracker.assistant_message(t + 1.95, t + 4.0, interrupted=False)
    tracker.agent_state("listening", t + 4.0)

    (turn,) = _turns(otel)  # the session is still open
    assert otel.spans("voice.conversation") == []
    attrs = _attrs(turn)
    assert attrs["voice.outcome"] == "ok"
    # LiveKit's e2e latency: user stopped (t + 1.0) -> agent started speaking (t + 1.95).
    assert attrs["voice.turn.latency"] == pytest.approx(0.95, abs=1e-3)
    assert attrs["voice.turn.latency.llm"] == pytest.approx(0.3, abs=1e-3)  # to the first token
    assert attrs["voice.turn.latency.tts"] == pytest.approx(0.1, abs=1e-3)  # to the first audio
    # The STT request ran t + 1.3 .. t + 1.45; a stage ends when its report comes, which here
    # (times made up, reported at once) is later: its share is at least the request.
    assert attrs["voice.turn.latency.stt"] >= 0.15 - 1e-3
    parts = sum(attrs[f"voice.turn.latency.{c}"] for c in ("stt", "llm", "tts", "other"))
    assert parts == pytest.approx(attrs["voice.turn.latency"])

    stages = _stages(otel, turn)
    (llm,) = stages["llm"]
    assert llm.name == "chat gpt-4o-mini"
    assert _attrs(llm)["gen_ai.provider.name"] == "openai"
    assert _attrs(llm)["gen_ai.usage.output_tokens"] == 5
    assert _attrs(llm)["voice.cost.usd"] > 0
    # A stage's span covers the request: it starts when the request started.
    assert llm.start_time == pytest.approx((t + 1.5) * 1e9, abs=5e6)
    (stt,) = stages["stt"]
    assert _attrs(stt)["voice.usage.input_audio_seconds"] == pytest.approx(1.2)
    (tts,) = stages["tts"]
    assert _attrs(tts)["voice.usage.characters"] == 18

    tracker.close()
    assert _attrs(otel.span("voice.conversation"))["voice.conversation.turns"] == 1


def test_a_reply_cut_off_by_the_user_is_a_barge_in_and_the_utterance_a_new_turn(
    otel: Captured,
) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    _exchange(tracker, t)
    tracker.user_started(t + 2.5)  # over the agent, half a second into its reply
    tracker.assistant_message(t + 1.95, t + 2.8, interrupted=True)
    tracker.agent_state("listening", t + 2.8)
    tracker.user_stopped(t + 3.5)
    tracker.close()

    first, second = _turns(otel)
    attrs = _attrs(first)
    assert attrs["voice.outcome"] == "interrupted"
    assert attrs["voice.interruption.stop_latency"] == pytest.approx(0.3, abs=1e-3)
    assert attrs["voice.tts.wasted.audio"] == pytest.approx(2.0 - 0.85, abs=1e-3)
    assert _attrs(second)["voice.interrupted"] is False
    assert otel.total("voice.interruptions") == 1


def test_speaking_over_a_reply_that_plays_on_is_no_barge_in(otel: Captured) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    _exchange(tracker, t)
    tracker.user_started(t + 2.5)  # a backchannel: LiveKit lets the reply finish
    tracker.user_stopped(t + 2.7)
    tracker.assistant_message(t + 1.95, t + 4.0, interrupted=False)
    tracker.agent_state("listening", t + 4.0)
    tracker.close()

    (turn,) = _turns(otel)  # what the user said over it got no answer: no turn of its own
    assert _attrs(turn)["voice.outcome"] == "ok"
    assert otel.total("voice.interruptions") == 0


def test_no_first_token_is_never_recorded_as_a_time_to_first_token(otel: Captured) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    tracker.user_started(t)
    tracker.llm_metrics(  # LiveKit reports ttft=-1 when no token came
        ended_at=t + 1.0,
        duration=0.5,
        ttft=-1.0,
        cancelled=True,
        input_tokens=30,
        output_tokens=0,
        speech_id=None,
        **LLM,
    )
    tracker.close()

    (llm,) = otel.stage_spans()
    assert "voice.stage.time_to_first_output" not in _attrs(llm)
    assert _attrs(llm)["voice.outcome"] == "interrupted"
    assert otel.points("voice.stage.time_to_first_output") == []


def test_a_streaming_stt_waits_from_the_end_of_speech_to_the_final_transcript(
    otel: Captured,
) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    tracker.user_started(t)
    tracker.stt_metrics(ended_at=t + 0.5, duration=0.0, audio_seconds=5.0, streamed=True, **STT)
    tracker.user_stopped(t + 1.0)
    tracker.transcript(time.time() - 30 + 1.3)
    tracker.close()

    (stt,) = otel.stage_spans()
    attrs = _attrs(stt)
    assert stt.name == "speech_to_text nova-3"
    assert attrs["voice.stage.time_to_first_output"] == pytest.approx(0.3, abs=0.05)
    assert attrs["voice.usage.input_audio_seconds"] == pytest.approx(5.0)


def _greeting_tts(tracker: SessionTracker, t: float) -> None:
    """LiveKit's report of a greeting's TTS request, ended at ``t + 0.2``."""
    tracker.tts_metrics(
        ended_at=t + 0.2,
        duration=0.15,
        ttfb=0.1,
        cancelled=False,
        characters=22,
        audio_seconds=1.0,
        speech_id="greeting",
        **TTS,
    )


def test_the_greeting_counts_for_the_conversation_not_a_turn(otel: Captured) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    tracker.speech_created("greeting")
    _greeting_tts(tracker, t)
    tracker.assistant_message(t + 0.2, t + 1.2, interrupted=False)
    tracker.close()

    conversation = otel.span("voice.conversation")
    assert otel.spans("voice.turn") == []
    assert [s.name for s in _stages(otel, conversation)["tts"]] == ["text_to_speech sonic-2"]


def test_a_greeting_cut_off_by_the_caller_is_not_the_reply_of_the_turn(otel: Captured) -> None:
    t = time.time() - 30
    tracker = SessionTracker()
    tracker.start()
    tracker.speech_created("greeting")
    tracker.agent_state("speaking", t)
    tracker.user_started(t + 0.5)  # the caller talks over the greeting
    tracker.assistant_message(t, t + 0.8, interrupted=True)
    tracker.agent_state("listening", t + 0.8)
    tracker.user_stopped(t + 1.5)
    tracker.agent_state("thinking", t + 1.9)
    tracker.assistant_message(t + 2.6, t + 4.0, interrupted=False)
    tracker.agent_state("listening", t + 4.0)
    tracker.close()

    (turn,) = _turns(otel)
    assert _attrs(turn)["voice.outcome"] == "ok"
    assert _attrs(turn)["voice.turn.latency"] == pytest.approx(1.1, abs=1e-3)
    assert otel.total("voice.interruptions") == 0


def test_no_conversation_opens_until_the_session_starts(otel: Captured) -> None:
    tracker = SessionTracker("never-started")
    tracker.when_started(lambda at: tracker.user_started(at), time.time())
    assert tracker.conversation is None
    tracker.close()  # the handle's detach(); LiveKit itself sends no close for such a session

    tracker.start()  # a closed tracker stays closed
    assert tracker.conversation is None
    assert otel.spans() == []
    assert otel.total("voice.conversations.active") == 0


def test_events_while_the_session_starts_are_replayed_once_it_has_started(
    otel: Captured,
) -> None:
    t = time.time() - 30
    tracker = SessionTracker("room-1")
    # A greeting said in on_enter, synthesised while start() still connects to the room.
    tracker.when_started(tracker.speech_created, "greeting")
    tracker.when_started(lambda _: _greeting_tts(tracker, t), None)
    assert otel.spans() == []

    tracker.start()
    assert otel.total("voice.conversations.active") == 1
    tracker.when_started(lambda at: tracker.user_started(at), t + 1.0)  # handled at once
    tracker.close()

    conversation = otel.span("voice.conversation")
    assert [s.name for s in _stages(otel, conversation)["tts"]] == ["text_to_speech sonic-2"]
    assert len(_turns(otel)) == 1
    assert otel.total("voice.conversations.active") == 0


def test_telemetry_switched_off_records_nothing(otel: Captured, options: Options) -> None:
    options.enabled = False
    tracker = SessionTracker()
    tracker.start()
    _exchange(tracker, time.time() - 30)
    tracker.close()
    assert otel.spans() == []


@pytest.mark.timeout(2400)
def test_a_real_livekit_session_records_conversations_turns_and_stages() -> None:
    summary = run_checks(adapters_python(), "livekit_checks.py", rig="livekit_rig")
    assert re.search(r"\b13 passed", summary), summary
