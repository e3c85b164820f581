"""The user utterances the demo plays into its pipeline, and a small WAV reader.

The WAV files are real speech made offline with espeak-ng and sox by ``make_audio.sh`` next to
this module (16 kHz, mono, 16-bit PCM). ``UTTERANCES`` lists what each file says; the demo shows
what the speech-to-text engine heard instead, errors included.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

SAMPLE_RATE: Final = 16_000

# (file stem, what the synthetic caller says); keep in step with make_audio.sh.
UTTERANCES: Final[tuple[tuple[str, str], ...]] = (
    ("01_weather", "what is the weather like today"),
    ("02_table", "book a table for two people"),
    ("03_hours", "what time do you open tomorrow"),
    ("04_pizza", "i would like to order a pizza"),
    ("05_taxi", "i need a taxi to the airport"),
    ("06_thanks", "thank you very much"),
)


@dataclass(frozen=True)
class Utterance:
    """One recorded user utterance: raw PCM and what was said."""

    name: str
    script: str
    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Duration of the audio in seconds."""
        return len(self.pcm) / 2 / self.sample_rate


def audio_dir() -> Path:
    """The directory holding the shipped WAV files."""
    return Path(str(resources.files("voice_otel.demo").joinpath("audio")))


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Read a mono 16-bit PCM WAV file; returns ``(pcm, sample_rate)``.

    Raises:
        ValueError: the file is not mono 16-bit PCM.
    """
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(
                f"{path}: need mono 16-bit PCM, got {wav.getnchannels()} channel(s) of "
                f"{8 * wav.getsampwidth()}-bit samples"
            )
        return wav.readframes(wav.getnframes()), wav.getframerate()


def load_utterances() -> list[Utterance]:
    """All shipped utterances, in conversation order."""
    folder = audio_dir()
    out = []
    for name, script in UTTERANCES:
        pcm, rate = read_wav(folder / f"{name}.wav")
        out.append(Utterance(name, script, pcm, rate))
    return out
