"""The LiveKit adapter on a real LiveKit Agents session (run inside the adapters venv).

``tests/test_integrations_livekit.py`` runs this file with the venv's pytest; the shared
``tests/conftest.py`` gives every test fresh in-memory providers (``otel``) and the strict fault
guard, so a fault in the adapter fails the test instead of being logged.

Timing assertions are lower bounds set by the stand-ins' own delays (a sleep never ends early)
and identities between recorded values; none bounds how long anything took.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import livekit_rig as rig
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentServer
from openai_stub import Reply, serve_chat
from opentelemetry.trace import StatusCode
from span_tree import CONVERSATION, attr, seconds, stages_of, turns_of

from voice_otel import _usage
from voice_otel.integrations.livekit import instrument_session

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Captured

COMPONENTS = ("stt", "llm", "tts", "other")
LLM_NAME = "chat openai/gpt-4o-mini"  # LiveKit Inference names the model provider/model
LLM_PRICE = {
    "livekit/openai/gpt-4o-mini": {"input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.6}
}

GREETING = "Hello, how can I help?"
REPLIES = [
    Reply(("It is sunny ", "and warm today."), first_chunk_delay=0.3),
    Reply(
        ("Once upon a time ", "there was a very long story ", "that went on and on for a while."),
        first_chunk_delay=0.2,
        prompt_tokens=70,
        completion_tokens=25,
    ),
    Reply(("Okay, stopping.",), first_chunk_delay=0.2, prompt_tokens=95, completion_tokens=4),
]
TRANSCRIPTS = ["what is the weather like", "tell me a long story", "stop thanks"]
SCRIPT: list[rig.Step] = [
    rig.AfterBotStops(0.3),  # the greeting
    rig.Speak(0.6),
    rig.AfterBotStops(0.4),
    rig.Speak(0.5),
    rig.AfterBotStarts(0.5),  # barge in half a second into the long story
    rig.Speak(0.6),
    rig.AfterBotStops(0.4),
]


@pytest.fixture(autouse=True)
def _prices() -> None:
    """A price for the LiveKit Inference model (the conftest restores the shipped table)."""
    _usage.set_price_table(_usage.load_table(LLM_PRICE))


async def test_a_session_is_one_conversation_with_a_turn_per_exchange(otel: Captured) -> None:
    async with serve_chat(REPLIES) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=TRANSCRIPTS)
        instrument_session(session.session, conversation_id="call-livekit", room="demo")
        await session.run(SCRIPT, greeting=GREETING)

    # The session really ran: the LLM was asked what the STT heard.
    assert stub.user_messages() == TRANSCRIPTS

    spans = otel.spans()
    conversation = otel.span(CONVERSATION)
    assert attr(conversation, "gen_ai.conversation.id") == "call-livekit"
    assert attr(conversation, "room") == "demo"
    assert attr(conversation, "voice.conversation.turns") == 3
    assert attr(conversation, "voice.conversation.interruptions") == 1

    # The greeting belongs to the call, not to a turn.
    greeting = stages_of(spans, conversation)
    assert [s.name for s in greeting["tts"]] == ["text_to_speech tone-1"]
    assert attr(greeting["tts"][0], "voice.usage.characters") == len(GREETING)

    turns = turns_of(spans, conversation)
    assert [attr(t, "voice.turn.index") for t in turns] == [1, 2, 3]
    assert [attr(t, "voice.outcome") for t in turns] == ["ok", "interrupted", "ok"]
    every_stage = [s for s in spans if (s.attributes or {}).get("voice.stage")]
    assert len(every_stage) == 1 + 3 * 3

    for turn, reply, segment in zip(turns, REPLIES, session.stt.segments_seconds, strict=True):
        stages = stages_of(spans, turn)
        (stt,) = stages["stt"]
        (llm,) = stages["llm"]
        (tts,) = stages["tts"]

        # Stage spans cover the request LiveKit measured, started when it started.
        assert stt.name == "speech_to_text local-asr"
        assert attr(stt, "gen_ai.provider.name") == "local"
        assert attr(stt, "voice.usage.input_audio_seconds") == pytest.approx(segment)
        assert seconds(stt) >= rig.STT_DELAY

        assert llm.name == LLM_NAME
        assert attr(llm, "gen_ai.provider.name") == "livekit"
        assert attr(llm, "gen_ai.usage.input_tokens") == reply.prompt_tokens
        assert attr(llm, "gen_ai.usage.output_tokens") == reply.completion_tokens
        assert attr(llm, "voice.cost.usd") == pytest.approx(
            (reply.prompt_tokens * 0.15 + reply.completion_tokens * 0.6) / 1e6
        )
        assert attr(llm, "voice.stage.time_to_first_output") >= reply.first_chunk_delay
        assert seconds(llm) >= attr(llm, "voice.stage.time_to_first_output")

        assert tts.name == "text_to_speech tone-1"
        assert attr(tts, "voice.usage.characters") == len(reply.text)
        expected = len(reply.text) * rig.TTS_SECONDS_PER_CHARACTER
        assert attr(tts, "voice.usage.output_audio_seconds") == pytest.approx(expected, abs=0.02)
        assert attr(tts, "voice.stage.time_to_first_output") >= rig.TTS_FIRST_AUDIO_DELAY

        # Voice-to-voice latency (LiveKit's user stopped -> agent started speaking), split into
        # parts that add up to it: the STT request, the LLM to its first token, the TTS to its
        # first audio, and "other" (the VAD's silence wait, endpointing, the playout).
        latency = attr(turn, "voice.turn.latency")
        parts = {c: attr(turn, f"voice.turn.latency.{c}") for c in COMPONENTS}
        assert sum(parts.values()) == pytest.approx(latency, abs=1e-9)
        assert parts["stt"] == pytest.approx(seconds(stt), abs=0.02)
        # LiveKit times first tokens and first audio in tasks of their own, which a busy event
        # loop runs late; where a late first output overlaps the next stage or the agent's
        # first audio, the later stage or the end of the wait takes the time.
        for stage, span in (("llm", llm), ("tts", tts)):
            assert 0 < parts[stage] <= attr(span, "voice.stage.time_to_first_output") + 1e-6
        # Waits that follow one another: the VAD's silence, the STT request, the LLM's first
        # chunk, the TTS's first audio. LiveKit's session and its STT adapter each run a VAD
        # stream over the audio, so where the silence ends is known to within a few frames.
        vad_jitter = 0.1
        assert parts["other"] >= rig.MIN_SILENCE_SECS - vad_jitter
        waits = (
            rig.MIN_SILENCE_SECS,
            rig.STT_DELAY,
            reply.first_chunk_delay,
            rig.TTS_FIRST_AUDIO_DELAY,
        )
        assert latency >= sum(waits) - vad_jitter

    # The barge-in: LiveKit stopped the story; its unplayed audio is counted as wasted.
    interrupted = turns[1]
    assert attr(interrupted, "voice.interrupted") is True
    assert attr(interrupted, "voice.interruption.stop_latency") >= 0
    produced = len(REPLIES[1].text) * rig.TTS_SECONDS_PER_CHARACTER
    assert 0 < attr(interrupted, "voice.tts.wasted.audio") < produced

    # Metrics, recorded as each turn ended, with bounded attributes only.
    assert otel.total("voice.turns", {"voice.outcome": "ok"}) == 2
    assert otel.total("voice.turns", {"voice.outcome": "interrupted"}) == 1
    assert otel.total("voice.interruptions") == 1
    assert otel.total("voice.turn.latency") == 3
    for component in COMPONENTS:
        point = otel.point("voice.turn.latency.component", {"voice.latency.component": component})
        assert point.count == 3
    for stage, count in (("stt", 3), ("llm", 3), ("tts", 4)):
        assert otel.total("voice.stage.duration", {"voice.stage": stage}) == count
    model = {"gen_ai.provider.name": "livekit", "gen_ai.request.model": "openai/gpt-4o-mini"}
    output = otel.point("gen_ai.client.token.usage", {**model, "gen_ai.token.type": "output"})
    assert output.sum == sum(r.completion_tokens for r in REPLIES)
    assert otel.total("voice.cost", {"voice.stage": "llm"}) > 0
    assert otel.total("voice.conversation.duration") == 1
    assert otel.point("voice.conversations.active").value == 0
    for metric in otel.metrics().values():
        for point in metric.data.data_points:
            keys = set(point.attributes or {})
            assert not keys & {"gen_ai.conversation.id", "voice.turn.id"}, metric.name


async def test_turns_are_recorded_while_the_session_goes_on(otel: Captured) -> None:
    async with serve_chat([Reply(("Sure.",), first_chunk_delay=0.1)]) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=["one", "two"])
        instrument_session(session.session)
        await session.session.start(Agent(instructions="You are a helpful voice assistant."))
        script: list[rig.Step] = [rig.Pause(0.2), rig.Speak(0.5), rig.AfterBotStops(0.3)]
        await session.mic.play(script)

        # The session is still open, and the first turn is already there.
        assert otel.spans(CONVERSATION) == []
        (turn,) = otel.spans("voice.turn")
        assert attr(turn, "voice.outcome") == "ok"
        assert otel.total("voice.turn.latency") == 1

        await session.session.aclose()
        await session.llm.aclose()
    assert attr(otel.span(CONVERSATION), "voice.conversation.turns") == 1


async def test_a_failed_llm_call_fails_its_turn(otel: Captured) -> None:
    replies = [Reply(status=400), Reply(("I am back.",), first_chunk_delay=0.1)]
    async with serve_chat(replies) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=["hello", "hello again"])
        instrument_session(session.session)
        script: list[rig.Step] = [rig.Pause(0.2), rig.Speak(0.5), rig.Pause(2.0), rig.Speak(0.5)]
        await session.run([*script, rig.AfterBotStops(0.3)])

    spans = otel.spans()
    failed, recovered = turns_of(spans, otel.span(CONVERSATION))
    assert attr(failed, "voice.outcome") == "error"
    assert failed.status.status_code is StatusCode.ERROR
    (llm,) = stages_of(spans, failed)["llm"]
    assert attr(llm, "voice.outcome") == "error"
    assert llm.status.status_code is StatusCode.ERROR
    assert attr(recovered, "voice.outcome") == "ok"
    assert otel.total("voice.turns", {"voice.outcome": "error"}) == 1


async def test_two_sessions_in_one_process_keep_their_own_conversations(otel: Captured) -> None:
    script: list[rig.Step] = [rig.Pause(0.2), rig.Speak(0.5), rig.AfterBotStops(0.3)]
    async with serve_chat([Reply(("Hi there.",), first_chunk_delay=0.1)]) as stub:
        sessions = [
            rig.build_rig(llm_url=stub.base_url, transcripts=[f"caller {name}"])
            for name in ("call-a", "call-b")
        ]
        for name, session in zip(("call-a", "call-b"), sessions, strict=True):
            instrument_session(session.session, conversation_id=name)
        await asyncio.gather(*(s.run(script) for s in sessions))

    spans = otel.spans()
    conversations = otel.spans(CONVERSATION)
    assert sorted(attr(c, "gen_ai.conversation.id") for c in conversations) == ["call-a", "call-b"]
    for conversation in conversations:
        (turn,) = turns_of(spans, conversation)
        assert attr(turn, "gen_ai.conversation.id") == attr(conversation, "gen_ai.conversation.id")
        stages = stages_of(spans, turn)
        assert [len(stages[s]) for s in ("stt", "llm", "tts")] == [1, 1, 1]


async def test_instrumenting_twice_warns_and_detach_stops_recording(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_chat([Reply(("Hi.",), first_chunk_delay=0.1)]) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=["hello"])
        first = instrument_session(session.session)
        with caplog.at_level(logging.WARNING, logger="voice_otel"):
            again = instrument_session(session.session)
        assert again is first
        assert any("already instrumented" in r.getMessage() for r in caplog.records)
        first.detach()
        await session.run([rig.Pause(0.2), rig.Speak(0.5), rig.AfterBotStops(0.3)])

    assert not first.attached
    assert otel.spans() == []  # detached before the session started: it had no conversation
    assert otel.total("voice.conversations.active") == 0


async def test_a_session_that_never_starts_leaves_no_conversation_open(otel: Captured) -> None:
    async with serve_chat([]) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=[])
        telemetry = instrument_session(session.session, conversation_id="never-started")
        await session.session.aclose()  # as after a failed start(): LiveKit sends no close event
        await session.llm.aclose()

    assert telemetry.conversation is None
    assert otel.spans() == []
    assert otel.total("voice.conversations.active") == 0


async def test_instrumenting_a_closed_session_warns_and_records_nothing(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_chat([Reply(("Hi.",), first_chunk_delay=0.1)]) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=["hello"])
        await session.run([rig.Pause(0.2), rig.Speak(0.5), rig.AfterBotStops(0.3)])
    with caplog.at_level(logging.WARNING, logger="voice_otel"):
        telemetry = instrument_session(session.session)

    assert [r.getMessage() for r in caplog.records if r.name.startswith("voice_otel")] == [
        "voice_otel: this AgentSession is already closed; nothing is recorded "
        "(call instrument_session() before start())"
    ]
    assert not telemetry.attached
    assert telemetry.conversation is None
    assert otel.spans() == []
    assert otel.total("voice.conversations.active") == 0


async def test_instrumenting_a_running_session_records_from_then_on(otel: Captured) -> None:
    async with serve_chat([Reply(("Sure.",), first_chunk_delay=0.1)]) as stub:
        session = rig.build_rig(llm_url=stub.base_url, transcripts=["one"])
        await session.session.start(Agent(instructions="You are a helpful voice assistant."))
        telemetry = instrument_session(session.session, conversation_id="late")
        assert telemetry.conversation is not None  # open at once: the session runs
        await session.mic.play([rig.Pause(0.2), rig.Speak(0.5), rig.AfterBotStops(0.3)])
        await session.session.aclose()
        await session.llm.aclose()

    assert not telemetry.attached
    conversation = otel.span(CONVERSATION)
    assert attr(conversation, "gen_ai.conversation.id") == "late"
    assert attr(conversation, "voice.conversation.turns") == 1
    assert otel.total("voice.conversations.active") == 0


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        (lambda: rtc.Room(), "got livekit.rtc.room.Room;"),
        (lambda: None, "got None;"),
        (lambda: "session", "got str;"),
        (lambda: object(), "got object;"),
    ],
)
async def test_anything_but_an_agent_session_is_refused_with_what_to_pass(
    otel: Captured, wrong: Callable[[], object], named: str
) -> None:
    with pytest.raises(TypeError) as raised:
        instrument_session(wrong())  # type: ignore[arg-type]
    message = str(raised.value)
    assert message.startswith("instrument_session() takes the AgentSession, ")
    assert named in message
    assert message.endswith("pass the session you call start() on")
    assert otel.spans() == []
    assert otel.total("voice.conversations.active") == 0


def test_the_example_agent_builds_against_this_livekit() -> None:
    """examples/livekit_agent.py needs a LiveKit server to run; here it must at least load."""
    path = Path(__file__).resolve().parents[2] / "examples" / "livekit_agent.py"
    spec = importlib.util.spec_from_file_location("example_livekit_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.server, AgentServer)
    assert module.server.setup_fnc is module.setup
