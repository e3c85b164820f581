"""The demo's language model: a small local responder, and what every LLM engine shares.

:class:`LocalResponder` is not a language model. It picks a canned answer by keywords in the
transcript, says plainly that it is a local stand-in, and streams it word by word with small
delays, like a hosted model would. Token counts are estimated (about four characters a token).
Set an OpenAI-compatible endpoint (see ``_openai_compat``) to use a real model instead.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

Message = dict[str, str]

SYSTEM_PROMPT: Final = (
    "You are a friendly voice assistant for a small restaurant and concierge service. "
    "Answer in one to three short spoken sentences, without lists or markup."
)


class ProviderError(RuntimeError):
    """The LLM provider rejected the request (a client error; retrying will not help)."""


class ProviderUnavailable(ProviderError):
    """The LLM provider could not serve the request right now (e.g. HTTP 503); retry."""


@dataclass
class TokenUsage:
    """Tokens of one LLM call, filled in while it streams."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False


class ChatEngine(Protocol):
    """What the pipeline needs from an LLM engine."""

    provider: str
    model: str

    def stream(self, messages: Sequence[Message], usage: TokenUsage) -> AsyncGenerator[str, None]:
        """Stream the reply to ``messages`` as text pieces, filling in ``usage``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def estimate_tokens(text: str) -> int:
    """Rough token count of English text (about four characters per token)."""
    return math.ceil(len(text) / 4) if text else 0


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Rough token count of a chat prompt, with a few tokens of framing per message."""
    return sum(4 + estimate_tokens(m.get("content", "")) for m in messages)


PREFIX: Final = "(local responder)"

# First matching rule wins; keywords are whole words of the transcript. Speech recognition
# makes mistakes, so each rule lists words that survive common misrecognitions.
_RULES: Final[tuple[tuple[frozenset[str], str], ...]] = (
    (
        frozenset({"pizza", "pizzas", "menu", "order", "eat"}),
        "Good choice. Today we have margherita, pepperoni, four cheese, mushroom and spinach, "
        "and a spicy vegetarian special. Every pizza comes small, medium or large, and extra "
        "toppings are one dollar each. Which one would you like?",
    ),
    (
        frozenset({"weather", "rain", "sunny", "cold", "warm", "forecast"}),
        "I cannot look outside. A real agent would call a weather service here; let us say "
        "it is mild with a light breeze.",
    ),
    (
        frozenset({"table", "book", "booking", "reservation", "reserve", "people"}),
        "Done. I booked a table for two at seven tonight, and a confirmation is on its way.",
    ),
    (
        frozenset({"open", "opening", "hours", "close", "tomorrow"}),
        "Sure. We open at nine tomorrow morning and close at ten in the evening.",
    ),
    (
        frozenset({"taxi", "cab", "airport", "ride", "car"}),
        "Okay. A taxi to the airport is on its way and should arrive in about ten minutes.",
    ),
    (
        frozenset({"thank", "thanks", "bye", "goodbye"}),
        "You are welcome. Goodbye!",
    ),
)


def local_answer(transcript: str) -> str:
    """The local responder's full answer to ``transcript``."""
    words = set(re.findall(r"[a-z']+", transcript.lower()))
    for keywords, answer in _RULES:
        if words & keywords:
            return f"{PREFIX} {answer}"
    if not words:
        return f"{PREFIX} Sorry, I did not catch that. Could you say it again?"
    return (
        f"{PREFIX} I heard: {transcript}. I only know about the weather, table bookings, "
        "opening hours, pizza and taxis."
    )


class LocalResponder:
    """A rule-based stand-in for a streaming LLM; no model, no network.

    Example:
        >>> responder = LocalResponder()
        >>> usage = TokenUsage()
        >>> async for piece in responder.stream([{"role": "user", "content": "hi"}], usage):
        ...     print(piece, end="")
    """

    provider: str = "local"
    model: str = "responder"

    def __init__(self, first_token_delay: float = 0.25, word_delay: float = 0.03) -> None:
        """Set the simulated timing.

        Args:
            first_token_delay: seconds before the first word, like a hosted model's TTFT.
            word_delay: base seconds between words (longer words take a little longer).
        """
        if first_token_delay < 0 or word_delay < 0:
            raise ValueError("delays must be >= 0")
        self.first_token_delay = first_token_delay
        self.word_delay = word_delay

    async def stream(
        self, messages: Sequence[Message], usage: TokenUsage
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to the last user message word by word (each with its space)."""
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        usage.input_tokens = estimate_prompt_tokens(messages)
        usage.estimated = True
        words = local_answer(last_user).split(" ")
        await asyncio.sleep(self.first_token_delay)
        for i, word in enumerate(words):
            if i:
                await asyncio.sleep(self.word_delay + 0.004 * len(word))
            piece = word if i == len(words) - 1 else f"{word} "
            usage.output_tokens += estimate_tokens(piece)
            yield piece

    async def aclose(self) -> None:
        """Nothing to release."""
