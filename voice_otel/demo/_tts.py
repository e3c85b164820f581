"""Offline text-to-speech with espeak-ng, from the ``espeakng-loader`` wheel, driven by ctypes.

The wheel carries ``libespeak-ng.so`` and its voice data, so ``pip install -e ".[demo]"``
is enough: no system package, no download. The library is initialised once per process in
synchronous mode with a callback that collects 16-bit PCM; :meth:`EspeakTTS.stream` synthesises
one sentence at a time and hands the audio out in fixed-size chunks, so the first chunk is ready
as soon as the first sentence is.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any, Final

logger = logging.getLogger(__name__)

PROVIDER: Final = "espeak-ng"
MODEL: Final = "espeak-ng"
DEFAULT_VOICE: Final = "en-us+f2"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_ENDPAUSE: Final = 0x1000
_PARAM_RATE: Final = 1
_EE_OK: Final = 0

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The process-wide espeak-ng instance (the C library keeps global state)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise RuntimeError(
                "the demo's text-to-speech needs espeakng-loader: "
                "pip install -e '.[demo]' in a voice-otel checkout"
            ) from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int

        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 100, data, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {data.decode()}")
        self.sample_rate = rate
        self.lock = threading.Lock()
        self._lib = lib
        self._sink: list[bytes] = []
        # Keep a reference: the C library calls it after this frame is gone.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, samples: int, events: Any) -> int:
        if samples > 0 and wav:
            self._sink.append(ctypes.string_at(wav, samples * 2))
        return 0  # 0 = go on synthesising

    def synth(self, text: str, voice: str, words_per_minute: int) -> bytes:
        """PCM of ``text``; call with :attr:`lock` held."""
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
        raw = text.encode()
        self._sink = []
        status = lib.espeak_Synth(
            raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        pcm, self._sink = b"".join(self._sink), []
        if status != _EE_OK:
            raise RuntimeError(f"espeak-ng synthesis failed (error {status})")
        return pcm


_library: _Library | None = None
_library_lock = threading.Lock()


def _load() -> _Library:
    global _library
    with _library_lock:
        if _library is None:
            _library = _Library()
        return _library


class EspeakTTS:
    """Streaming text-to-speech: 16-bit mono PCM at :attr:`sample_rate` (22050 Hz).

    Example:
        >>> tts = EspeakTTS(voice="en-us+f2")
        >>> for chunk in tts.stream("Hello there. How can I help?"):
        ...     play(chunk)
    """

    def __init__(
        self, voice: str = DEFAULT_VOICE, words_per_minute: int = 165, chunk_ms: int = 100
    ) -> None:
        """Load espeak-ng (once per process) and check the voice.

        Args:
            voice: an espeak-ng voice name, optionally with a ``+variant``.
            words_per_minute: speaking rate.
            chunk_ms: audio per streamed chunk, in milliseconds.

        Raises:
            RuntimeError: espeakng-loader is missing or the library fails to start.
            ValueError: the voice does not exist or a setting is out of range.
        """
        if not 80 <= words_per_minute <= 450:
            raise ValueError("words_per_minute must be between 80 and 450")
        if chunk_ms <= 0:
            raise ValueError("chunk_ms must be positive")
        self._lib = _load()
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.sample_rate = self._lib.sample_rate
        self.chunk_bytes = self.sample_rate * chunk_ms // 1000 * 2
        with self._lib.lock:
            self._lib.synth("", voice, words_per_minute)  # fails here on a bad voice

    def seconds(self, pcm: bytes) -> float:
        """Duration of ``pcm`` in seconds."""
        return len(pcm) / 2 / self.sample_rate

    def synthesize(self, text: str) -> bytes:
        """The whole utterance as one PCM buffer."""
        with self._lib.lock:
            return self._lib.synth(text, self.voice, self.words_per_minute)

    def stream(self, text: str) -> Iterator[bytes]:
        """Synthesise sentence by sentence and yield PCM chunks of ``chunk_ms`` each.

        Closing the iterator early (a barge-in) stops before the next sentence is synthesised.
        """
        for sentence in split_sentences(text):
            yield from self.chunks(self.synthesize(sentence))

    def chunks(self, pcm: bytes) -> Iterator[bytes]:
        """Cut PCM into ``chunk_ms`` pieces (the last one may be shorter)."""
        for start in range(0, len(pcm), self.chunk_bytes):
            yield pcm[start : start + self.chunk_bytes]


def split_sentences(text: str) -> list[str]:
    """Split text at sentence ends, dropping empty pieces."""
    return [part for part in (p.strip() for p in _SENTENCE_END.split(text)) if part]
