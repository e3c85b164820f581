"""Offline speech-to-text with pocketsphinx (its PyPI wheel carries an English model).

The model loads once, when :class:`PocketsphinxSTT` is created (about half a second), and is
reused for every utterance; no model is ever downloaded.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

logger = logging.getLogger(__name__)

PROVIDER: Final = "pocketsphinx"
MODEL: Final = "en-us"


class PocketsphinxSTT:
    """Batch speech recognition of 16 kHz mono 16-bit PCM.

    Example:
        >>> stt = PocketsphinxSTT()
        >>> stt.transcribe(pcm_bytes)
        'what is the weather like today'
    """

    def __init__(self, **config: Any) -> None:
        """Load the acoustic and language models.

        Args:
            **config: pocketsphinx decoder settings (e.g. ``hmm=``, ``lm=``, ``dict=`` for
                another model); the defaults use the model in the wheel.

        Raises:
            RuntimeError: pocketsphinx is not installed (``pip install -e ".[demo]"``).
        """
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise RuntimeError(
                "the demo's speech-to-text needs pocketsphinx: "
                "pip install -e '.[demo]' in a voice-otel checkout"
            ) from exc
        config.setdefault("loglevel", "FATAL")
        # Fewer active HMMs per frame: two to three times faster on a small CPU, and on the
        # demo's utterances as accurate as the default (30000).
        config.setdefault("maxhmmpf", 3000)
        self._decoder = Decoder(**config)
        self.sample_rate = int(self._decoder.config["samprate"])
        # One decoder holds one utterance at a time.
        self._lock = threading.Lock()

    def transcribe(self, pcm: bytes, sample_rate: int = 16_000) -> str:
        """Decode one whole utterance; returns the best hypothesis ('' when nothing was heard).

        Raises:
            ValueError: the audio is not at the model's sample rate.
        """
        if sample_rate != self.sample_rate:
            raise ValueError(f"audio must be {self.sample_rate} Hz, got {sample_rate} Hz")
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        logger.debug("pocketsphinx decoded %d bytes", len(pcm))
        return str(text)
