"""The ``voice-otel demo`` voice agent: real offline STT, a streamed LLM and real offline TTS.

Speech recognition is pocketsphinx, speech synthesis is espeak-ng (both from PyPI wheels, no
model download), and the LLM is any OpenAI-compatible endpoint or a small local responder.
Install with ``pip install -e ".[demo]"`` in a checkout and run ``voice-otel demo``. Each engine
also works on its own, without voice_otel.
"""

from __future__ import annotations

from voice_otel.demo._audio import Utterance, load_utterances
from voice_otel.demo._llm import LocalResponder, ProviderError, ProviderUnavailable, TokenUsage
from voice_otel.demo._openai_compat import OpenAICompatibleLLM
from voice_otel.demo._pipeline import DemoPlan, TurnResult, VoicePipeline
from voice_otel.demo._run import build_pipeline, run_demo
from voice_otel.demo._stt import PocketsphinxSTT
from voice_otel.demo._tts import EspeakTTS

__all__ = [
    "DemoPlan",
    "EspeakTTS",
    "LocalResponder",
    "OpenAICompatibleLLM",
    "PocketsphinxSTT",
    "ProviderError",
    "ProviderUnavailable",
    "TokenUsage",
    "TurnResult",
    "Utterance",
    "VoicePipeline",
    "build_pipeline",
    "load_utterances",
    "run_demo",
]
