"""A LiveKit Agents voice agent with voice_otel telemetry: one line on the session.

The agent is LiveKit's usual shape: an ``AgentServer`` whose room sessions run an
``AgentSession`` with STT, LLM and TTS from LiveKit Inference and the local Silero VAD. The one
voice_otel line is ``instrument_session(session, ...)``: the call becomes a
``voice.conversation`` with a ``voice.turn`` per exchange, recorded as each turn ends (LiveKit's
own turn metrics wait for the session to end), and a stage for every STT, LLM and TTS request.

voice_otel is set up once per worker process (LiveKit runs jobs in processes of their own), in
the server's setup function; telemetry goes to the collector at ``OTEL_EXPORTER_OTLP_ENDPOINT``
(for example the stack from ``voice-otel stack up``). Run it like any LiveKit agent, with
``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET`` set::

    pip install "voice-otel[livekit]"
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
    python examples/livekit_agent.py dev
"""

from __future__ import annotations

from livekit.agents import (
    Agent,
    AgentServer,
    AgentSession,
    JobContext,
    JobProcess,
    cli,
    inference,
)

import voice_otel
from voice_otel.integrations.livekit import instrument_session

INSTRUCTIONS = "You are a friendly voice assistant. Answer in one or two short sentences."


def setup(proc: JobProcess) -> None:
    """Per worker process: telemetry (the job's own signal handling is LiveKit's)."""
    voice_otel.configure(service_name="livekit-agent", handle_sigterm=False)
    proc.userdata["vad"] = inference.VAD()


server = AgentServer(setup_fnc=setup)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session: AgentSession[None] = AgentSession(
        stt="deepgram/nova-3",
        llm="openai/gpt-4.1-mini",
        tts="cartesia/sonic-2",
        vad=ctx.proc.userdata["vad"],
    )
    # voice_otel, before start() so that no report (a greeting in on_enter) is missed:
    instrument_session(session, conversation_id=ctx.room.name)
    await session.start(agent=Agent(instructions=INSTRUCTIONS), room=ctx.room)
    session.generate_reply(instructions="Greet the caller and offer your help.")


if __name__ == "__main__":
    cli.run_app(server)
