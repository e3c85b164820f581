"""Build the demo pipeline from its engines and run one conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from voice_otel.demo._audio import Utterance, load_utterances
from voice_otel.demo._llm import ChatEngine, LocalResponder
from voice_otel.demo._openai_compat import OpenAICompatibleLLM
from voice_otel.demo._pipeline import DemoPlan, TurnResult, VoicePipeline
from voice_otel.demo._stt import PocketsphinxSTT
from voice_otel.demo._tts import EspeakTTS


def build_pipeline(
    llm_url: str | None = None,
    llm_model: str | None = None,
    llm_api_key: str | None = None,
    llm_provider: str | None = None,
) -> VoicePipeline:
    """Load the engines (the STT model once, here) and wrap them in a :class:`VoicePipeline`.

    Args:
        llm_url: an OpenAI-compatible API base (``.../v1``); the local responder when None.
        llm_model: the model to ask for at ``llm_url``.
        llm_api_key: bearer token for ``llm_url``.
        llm_provider: ``gen_ai.provider.name`` for ``llm_url`` (guessed from the host).

    Raises:
        ValueError: ``llm_url`` is set without ``llm_model`` or the reverse, or is not an
            http(s) URL.
        RuntimeError: an engine is not installed (``pip install -e ".[demo]"``).
    """
    llm: ChatEngine
    if llm_url:
        if not llm_model:
            raise ValueError("--llm-url needs --llm-model (or VOICE_OTEL_DEMO_LLM_MODEL)")
        llm = OpenAICompatibleLLM(llm_url, llm_model, api_key=llm_api_key, provider=llm_provider)
    elif llm_model:
        raise ValueError(
            f"--llm-model {llm_model} needs --llm-url (or VOICE_OTEL_DEMO_LLM_URL); "
            "without them the demo uses its local responder"
        )
    else:
        llm = LocalResponder()
    return VoicePipeline(PocketsphinxSTT(), llm, EspeakTTS())


def run_demo(
    plan: DemoPlan | None = None,
    pipeline: VoicePipeline | None = None,
    utterances: Sequence[Utterance] | None = None,
) -> list[TurnResult]:
    """Run one scripted conversation with whatever telemetry setup is current.

    Call :func:`voice_otel.configure` first to choose where telemetry goes; without it the
    spans and metrics go to the global OpenTelemetry providers.

    Example:
        >>> voice_otel.configure(service_name="voice-otel-demo")
        >>> for result in run_demo():
        ...     print(result.heard, result.record.latency)
    """
    plan = plan or DemoPlan()
    pipeline = pipeline or build_pipeline()
    clips = list(utterances) if utterances is not None else load_utterances()

    async def main() -> list[TurnResult]:
        try:
            return await pipeline.converse(clips, plan)
        finally:
            await pipeline.llm.aclose()

    return asyncio.run(main())
