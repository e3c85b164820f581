"""A voice agent service with voice_otel: pipeline telemetry, health checks, HTTP endpoints.

Run it::

    pip install "voice-otel[fastapi,health]"
    python examples/fastapi_app.py            # serves on http://127.0.0.1:8000

Then::

    curl -s -X POST localhost:8000/respond -H 'content-type: application/json' \\
         -d '{"audio_text": "what time do you open"}'
    curl -s localhost:8000/health
    curl -s -H "Authorization: Bearer $VOICE_AGENT_TOKEN" localhost:8000/health/detailed
    curl -s localhost:8000/metrics | grep voice_
    curl -s localhost:8000/dashboards

Optional environment variables:

- ``VOICE_AGENT_TOKEN``: bearer token for /health/detailed and /alerts (default: none, open);
- ``VOICE_AGENT_REDIS_URL`` / ``VOICE_AGENT_DATABASE_URL``: add Redis / PostgreSQL checks;
- ``VOICE_AGENT_LLM_URL``: probe this URL as the LLM provider (default: pipeline calls only);
- ``ALERTMANAGER_URL``: where /alerts reads alerts from (e.g. ``http://127.0.0.1:9093``);
- ``OTEL_EXPORTER_OTLP_ENDPOINT``: also send telemetry to a collector;
- ``HOST`` / ``PORT``: where to listen (default 127.0.0.1:8000).

The STT, LLM and TTS "engines" below are stand-ins that take a little time and sometimes fail
(ask for "flaky"), so the traces, latency metrics and live provider health have something to
show. Swap in your own providers; the decorators stay the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

import voice_otel
from voice_otel.health import HealthMonitor, enable_system_metrics
from voice_otel.integrations.fastapi import instrument_app

logger = logging.getLogger("voice_agent")


@voice_otel.stt(provider="example-stt", model="stand-in-v1")
async def transcribe(audio_text: str) -> str:
    await asyncio.sleep(random.uniform(0.05, 0.15))
    return audio_text.strip().lower()


@voice_otel.llm(provider="example-llm", model="stand-in-chat")
async def think(transcript: str) -> AsyncIterator[str]:
    if "flaky" in transcript:
        raise TimeoutError("the language model did not answer in time")
    await asyncio.sleep(random.uniform(0.1, 0.3))  # time to first token
    for word in f"You said: {transcript}. How can I help?".split():
        await asyncio.sleep(0.01)
        yield word + " "


@voice_otel.tts(provider="example-tts", model="stand-in-voice")
async def speak(text: str) -> AsyncIterator[bytes]:
    for _ in range(3):
        await asyncio.sleep(random.uniform(0.03, 0.08))
        yield b"\0" * 3200  # 100 ms of 16 kHz 16-bit silence


class Utterance(BaseModel):
    audio_text: str = Field(min_length=1, max_length=500, description="What the caller said.")


class Reply(BaseModel):
    transcript: str
    reply: str
    audio_bytes: int
    latency_s: float | None


def build_monitor() -> HealthMonitor:
    """The checks for what this agent depends on."""
    monitor = HealthMonitor(interval=15, timeout=5)
    monitor.add_orchestrator()
    monitor.add_stt_provider("example-stt")
    monitor.add_llm_provider("example-llm", os.environ.get("VOICE_AGENT_LLM_URL"))
    monitor.add_tts_provider("example-tts")
    if redis_url := os.environ.get("VOICE_AGENT_REDIS_URL"):
        monitor.add_redis(redis_url)
    if database_url := os.environ.get("VOICE_AGENT_DATABASE_URL"):
        monitor.add_database(database_url)
    return monitor


def create_app() -> FastAPI:
    app = FastAPI(title="voice agent (voice-otel example)")

    @app.post("/respond", response_model=Reply)
    async def respond(utterance: Utterance) -> Reply:
        """One turn: transcribe, think, speak."""
        async with voice_otel.conversation() as call, call.turn() as turn:
            transcript = await transcribe(utterance.audio_text)
            try:
                reply = "".join([token async for token in think(transcript)]).strip()
            except TimeoutError:
                reply = "Sorry, I did not catch that."
            audio = b"".join([chunk async for chunk in speak(reply)])
        latency = turn.record.latency if turn.record is not None else None
        return Reply(transcript=transcript, reply=reply, audio_bytes=len(audio), latency_s=latency)

    instrument_app(
        app,
        monitor=build_monitor(),
        alertmanager_url=os.environ.get("ALERTMANAGER_URL"),
        token=os.environ.get("VOICE_AGENT_TOKEN"),
    )
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # prometheus_port=0: the OpenTelemetry Prometheus reader feeds the app's own /metrics
    # (its extra server takes any free port); json_path=False: no local file.
    telemetry = voice_otel.configure(
        service_name="voice-agent-example", prometheus_port=0, json_path=False
    )
    for line in telemetry.describe():
        logger.info("telemetry: %s", line)
    enable_system_metrics()

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
    finally:
        voice_otel.shutdown(timeout=5)


if __name__ == "__main__":
    main()
