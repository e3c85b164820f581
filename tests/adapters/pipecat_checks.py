"""The Pipecat adapter on a real Pipecat pipeline (run inside the adapters venv).

``tests/test_integrations_pipecat.py`` runs this file with the venv's pytest; the shared
``tests/conftest.py`` gives every test fresh in-memory providers (``otel``) and the strict fault
guard, so a fault in the adapter fails the test instead of being logged.

Timing assertions are lower bounds set by the stand-ins' own delays (a sleep never ends early)
and identities between recorded values; none bounds how long anything took.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pipecat_rig as rig
import pytest
from openai_stub import Reply, serve_chat
from opentelemetry.trace import StatusCode
from span_tree import CONVERSATION, attr, children, stages_of, turns_of

from voice_otel.integrations.pipecat import VoiceOtelObserver

if TYPE_CHECKING:
    from conftest import Captured

    from voice_otel._runtime import Options

SPEECH_TIMEOUT = 0.2  # the user turn stop strategy's wait after the VAD's stop (see the rig)
COMPONENTS = ("stt", "llm", "tts", "other")

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
    rig.Speak(0.5),
    rig.AfterBotStops(0.4),
]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("voice_otel")]


async def test_a_call_is_one_conversation_with_a_turn_per_exchange(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_chat(REPLIES) as stub:
        observer = VoiceOtelObserver(conversation_id="call-pipecat", turn_end_timeout=0.3)
        pipeline = rig.build_rig(
            llm_url=stub.base_url,
            script=SCRIPT,
            transcripts=TRANSCRIPTS,
            observers=[observer],
            greeting=GREETING,
        )
        with caplog.at_level(logging.WARNING, "voice_otel"):
            await pipeline.run()
    assert _warnings(caplog) == []

    # The pipeline really ran: the LLM was asked what the STT heard.
    assert stub.user_messages() == TRANSCRIPTS

    spans = otel.spans()
    conversation = otel.span(CONVERSATION)
    assert attr(conversation, "gen_ai.conversation.id") == "call-pipecat"
    assert attr(conversation, "voice.conversation.turns") == 3
    assert attr(conversation, "voice.conversation.interruptions") == 1

    # The greeting belongs to the call, not to a turn.
    greeting = stages_of(spans, conversation)
    assert [s.name for s in greeting["tts"]] == ["text_to_speech tone-1"]
    assert attr(greeting["tts"][0], "voice.usage.characters") == len(GREETING)
    assert not greeting["stt"] and not greeting["llm"]

    turns = turns_of(spans, conversation)
    assert [attr(t, "voice.turn.index") for t in turns] == [1, 2, 3]
    assert [attr(t, "voice.outcome") for t in turns] == ["ok", "interrupted", "ok"]
    assert [attr(t, "voice.interrupted") for t in turns] == [False, True, False]
    for turn in turns:
        assert attr(turn, "gen_ai.conversation.id") == "call-pipecat"
    every_stage = [s for s in spans if (s.attributes or {}).get("voice.stage")]
    assert len(every_stage) == 1 + 3 * 3  # greeting, and STT, LLM and TTS in every turn

    for turn, reply, segment in zip(turns, REPLIES, pipeline.stt.segments_seconds, strict=True):
        stages = stages_of(spans, turn)
        (stt,) = stages["stt"]
        (llm,) = stages["llm"]
        (tts,) = stages["tts"]

        assert stt.name == "speech_to_text local-asr"
        assert attr(stt, "gen_ai.provider.name") == "local"
        assert attr(stt, "voice.usage.input_audio_seconds") == pytest.approx(segment)
        assert attr(stt, "voice.stage.time_to_first_output") >= rig.STT_DELAY

        assert llm.name == "chat gpt-4o-mini"
        assert attr(llm, "gen_ai.provider.name") == "openai"
        assert attr(llm, "gen_ai.usage.input_tokens") == reply.prompt_tokens
        assert attr(llm, "gen_ai.usage.output_tokens") == reply.completion_tokens
        assert attr(llm, "voice.cost.usd") > 0
        assert attr(llm, "voice.stage.time_to_first_output") >= reply.first_chunk_delay

        assert tts.name == "text_to_speech tone-1"
        assert attr(tts, "voice.tts.voice") == "alto"
        assert attr(tts, "voice.usage.characters") == len(reply.text)
        expected_audio = len(reply.text) * rig.TTS_SECONDS_PER_CHARACTER
        assert attr(tts, "voice.usage.output_audio_seconds") == pytest.approx(expected_audio)

        # Voice-to-voice latency, split into parts that add up to it. The parts are the
        # stages' waits: LLM to its first token, TTS to its first audio, STT from the VAD's
        # stop until the stage ended with the transcript; "other" holds the VAD's own wait and
        # turn detection.
        latency = attr(turn, "voice.turn.latency")
        parts = {c: attr(turn, f"voice.turn.latency.{c}") for c in COMPONENTS}
        assert sum(parts.values()) == pytest.approx(latency, abs=1e-9)
        for stage, span in (("llm", llm), ("tts", tts)):
            ttfo = attr(span, "voice.stage.time_to_first_output")
            assert parts[stage] == pytest.approx(ttfo, abs=1e-6)
        assert parts["stt"] >= attr(stt, "voice.stage.time_to_first_output")
        assert parts["other"] >= rig.VAD_STOP_SECS - 1e-6
        # Waits that follow one another: the VAD's silence, then transcription and the turn
        # stop strategy's timeout side by side, the LLM's first chunk, the TTS's first audio.
        waits = (
            rig.VAD_STOP_SECS,
            max(rig.STT_DELAY, SPEECH_TIMEOUT),
            reply.first_chunk_delay,
            rig.TTS_FIRST_AUDIO_DELAY,
        )
        assert latency >= sum(waits)

    # The barge-in: the story was cut short, its unplayed audio counted as wasted.
    interrupted = turns[1]
    assert attr(interrupted, "voice.interruption.stop_latency") >= 0
    wasted = attr(interrupted, "voice.tts.wasted.audio")
    produced = len(REPLIES[1].text) * rig.TTS_SECONDS_PER_CHARACTER
    assert 0 < wasted < produced
    assert attr(interrupted, "voice.tts.wasted.characters") == pytest.approx(
        len(REPLIES[1].text) * wasted / produced
    )

    # Metrics, with bounded attributes only.
    assert otel.total("voice.turns", {"voice.outcome": "ok"}) == 2
    assert otel.total("voice.turns", {"voice.outcome": "interrupted"}) == 1
    assert otel.total("voice.interruptions") == 1
    assert otel.total("voice.interruption.stop_latency") == 1
    assert otel.total("voice.turn.latency") == 3
    for component in COMPONENTS:
        point = otel.point("voice.turn.latency.component", {"voice.latency.component": component})
        assert point.count == 3
    for stage, count in (("stt", 3), ("llm", 3), ("tts", 4)):
        assert otel.total("voice.stage.duration", {"voice.stage": stage}) == count
        assert otel.total("voice.stage.time_to_first_output", {"voice.stage": stage}) == count
    tokens = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    input_tokens = otel.point("gen_ai.client.token.usage", {**tokens, "gen_ai.token.type": "input"})
    assert input_tokens.sum == sum(r.prompt_tokens for r in REPLIES)
    characters = len(GREETING) + sum(len(r.text) for r in REPLIES)
    assert otel.total("voice.usage.characters", {"voice.stage": "tts"}) == characters
    assert otel.total("voice.cost", {"voice.stage": "llm"}) > 0
    assert otel.total("voice.conversation.duration") == 1
    assert otel.point("voice.conversations.active").value == 0
    for metric in otel.metrics().values():
        for point in metric.data.data_points:
            keys = set(point.attributes or {})
            assert not keys & {"gen_ai.conversation.id", "voice.turn.id"}, metric.name


async def test_a_failed_llm_call_fails_its_turn_and_the_call_goes_on(otel: Captured) -> None:
    replies = [Reply(status=400), Reply(("Sorry, ", "I am back."), first_chunk_delay=0.1)]
    script: list[rig.Step] = [
        rig.Pause(0.3),
        rig.Speak(0.5),
        rig.Pause(1.5),  # no answer comes
        rig.Speak(0.5),
        rig.AfterBotStops(0.4),
    ]
    async with serve_chat(replies) as stub:
        observer = VoiceOtelObserver(turn_end_timeout=0.3)
        pipeline = rig.build_rig(
            llm_url=stub.base_url,
            script=script,
            transcripts=["hello", "hello again"],
            observers=[observer],
        )
        await pipeline.run()

    spans = otel.spans()
    conversation = otel.span(CONVERSATION)
    failed, recovered = turns_of(spans, conversation)

    assert attr(failed, "voice.outcome") == "error"
    assert failed.status.status_code is StatusCode.ERROR
    (llm,) = stages_of(spans, failed)["llm"]
    assert llm.status.status_code is StatusCode.ERROR
    assert attr(llm, "voice.outcome") == "error"
    assert attr(llm, "error.type") == "BadRequestError"
    assert "voice.turn.latency" not in (failed.attributes or {})

    assert attr(recovered, "voice.outcome") == "ok"
    assert attr(recovered, "voice.turn.latency") > 0
    assert otel.total("voice.turns", {"voice.outcome": "error"}) == 1
    errors = {"voice.stage": "llm", "voice.outcome": "error", "error.type": "BadRequestError"}
    assert otel.total("voice.stage.duration", errors) == 1


async def test_two_pipelines_in_one_process_keep_their_own_conversations(otel: Captured) -> None:
    script: list[rig.Step] = [rig.Pause(0.3), rig.Speak(0.5), rig.AfterBotStops(0.3)]
    async with serve_chat([Reply(("Hi there.",), first_chunk_delay=0.1)]) as stub:
        pipelines = [
            rig.build_rig(
                llm_url=stub.base_url,
                script=script,
                transcripts=[f"caller {name}"],
                observers=[VoiceOtelObserver(conversation_id=name, turn_end_timeout=0.3)],
            )
            for name in ("call-a", "call-b")
        ]
        await asyncio.gather(*(p.run() for p in pipelines))

    spans = otel.spans()
    conversations = otel.spans(CONVERSATION)
    assert sorted(attr(c, "gen_ai.conversation.id") for c in conversations) == ["call-a", "call-b"]
    for conversation in conversations:
        (turn,) = turns_of(spans, conversation)
        assert attr(turn, "gen_ai.conversation.id") == attr(conversation, "gen_ai.conversation.id")
        stages = stages_of(spans, turn)
        assert [len(stages[s]) for s in ("stt", "llm", "tts")] == [1, 1, 1]
        trace_id = conversation.context.trace_id
        assert all(s.context.trace_id == trace_id for s in children(spans, turn))


async def test_an_observer_reused_after_a_dropped_call_records_the_next_call_afresh(
    otel: Captured, options: Options
) -> None:
    options.capture_content = True
    reply = Reply(("Sure. It is sunny outside. ", "A real treat."), first_chunk_delay=0.1)
    observer = VoiceOtelObserver(turn_end_timeout=0.3)
    async with serve_chat([reply]) as stub:
        # The caller hangs up while still speaking: the call is cancelled mid-turn.
        dropped = rig.build_rig(
            llm_url=stub.base_url,
            script=[rig.Pause(0.3), rig.Speak(1.0)],
            transcripts=["never heard"],
            observers=[observer],
        )
        await dropped.run(cancel=True)
        answered = rig.build_rig(
            llm_url=stub.base_url,
            script=[rig.Pause(0.3), rig.Speak(0.5), rig.AfterBotStops(0.4)],
            transcripts=["what is the weather like"],
            observers=[observer],
        )
        await answered.run()
    assert stub.user_messages() == ["what is the weather like"]

    spans = otel.spans()
    first, second = otel.spans(CONVERSATION)
    assert attr(first, "voice.conversation.turns") == 1
    (cut_off,) = turns_of(spans, first)
    assert attr(cut_off, "voice.outcome") == "interrupted"
    assert attr(cut_off, "voice.interrupted") is False
    assert "voice.turn.latency" not in (cut_off.attributes or {})

    assert attr(second, "voice.conversation.turns") == 1
    assert not any(stages_of(spans, second).values())  # no stage outside the turn
    (turn,) = turns_of(spans, second)
    assert attr(turn, "voice.outcome") == "ok"
    assert attr(turn, "voice.turn.latency") > 0
    stages = stages_of(spans, turn)
    assert [len(stages[s]) for s in ("stt", "llm", "tts")] == [1, 1, 1]
    spoken = " ".join(str(attr(s, "voice.content.input")) for s in stages["tts"])
    assert spoken == reply.text.strip()


async def test_an_observer_added_after_the_start_says_it_records_nothing(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    script: list[rig.Step] = [rig.Pause(0.3), rig.Speak(0.5), rig.AfterBotStops(0.3)]
    observer = VoiceOtelObserver(turn_end_timeout=0.3)
    async with serve_chat([Reply(("Hi there.",), first_chunk_delay=0.1)]) as stub:
        pipeline = rig.build_rig(
            llm_url=stub.base_url, script=script, transcripts=["hello"], observers=[]
        )

        @pipeline.worker.event_handler("on_pipeline_started")
        async def add_late(worker: object, frame: object) -> None:
            pipeline.worker.add_observer(observer)

        with caplog.at_level(logging.WARNING, "voice_otel"):
            await pipeline.run()

    assert stub.user_messages() == ["hello"]  # the call happened ...
    assert otel.spans() == []  # ... unrecorded, and the log says why, once
    (warning,) = _warnings(caplog)
    assert "before a StartFrame" in warning and "add_observer()" in warning


async def test_one_observer_shared_by_two_pipelines_warns_once(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    script: list[rig.Step] = [rig.Pause(0.3), rig.Speak(0.5), rig.AfterBotStops(0.3)]
    shared = VoiceOtelObserver(turn_end_timeout=0.3)
    async with serve_chat([Reply(("Hi there.",), first_chunk_delay=0.1)]) as stub:
        pipelines = [
            rig.build_rig(
                llm_url=stub.base_url, script=script, transcripts=[name], observers=[shared]
            )
            for name in ("caller a", "caller b")
        ]
        with caplog.at_level(logging.WARNING, "voice_otel"):
            await asyncio.gather(*(p.run() for p in pipelines))

    (warning,) = _warnings(caplog)
    assert "second pipeline start" in warning and "observer of its own" in warning
    assert len(otel.spans(CONVERSATION)) == 1  # merged, as the warning says


def _example(name: str) -> ModuleType:
    """A script from ``examples/``, imported by path."""
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_pipeline_records_its_call(otel: Captured) -> None:
    server = _example("local_openai_server")
    example = _example("pipecat_pipeline")
    files = sorted(example.AUDIO_DIR.glob("*.wav"))[:1]
    with server.LocalOpenAIServer(engines="synthetic", first_token_delay=0.1) as local:
        await example.run_call(local.base_url, "local", files)

    spans = otel.spans()
    (turn,) = turns_of(spans, otel.span(CONVERSATION))
    assert attr(turn, "voice.outcome") == "ok"
    assert attr(turn, "voice.turn.latency") > 0
    stages = stages_of(spans, turn)
    assert [len(stages[s]) for s in ("stt", "llm", "tts")] == [1, 1, 1]
    assert [s.name for s in stages["llm"]] == ["chat gpt-4o-mini"]
    (stt,) = stages["stt"]
    assert stt.name == f"speech_to_text {example.STT_MODEL}"
    assert attr(stt, "gen_ai.provider.name") == "openai"
    assert attr(stt, "voice.cost.usd") > 0  # the example's STT model is in the price table


async def test_the_example_gives_up_on_an_unreachable_provider(otel: Captured) -> None:
    example = _example("pipecat_pipeline")
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    files = sorted(example.AUDIO_DIR.glob("*.wav"))[:1]
    with pytest.raises(example.NoAnswerError, match=rf"did not answer {files[0].name} within 3 s"):
        await example.run_call(f"http://127.0.0.1:{port}/v1", "local", files, answer_timeout=3)
    (turn,) = otel.spans("voice.turn")
    assert attr(turn, "voice.outcome") in ("error", "interrupted")
