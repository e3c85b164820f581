"""Streaming chat completions from any OpenAI-compatible endpoint, with httpx and SSE.

Works with OpenAI itself and with servers that speak the same API (vLLM, llama.cpp's server,
Ollama, LM Studio, Groq, ...). The API key comes from the caller (the demo reads it from the
environment) and is only ever put in the ``Authorization`` header, never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from voice_otel.demo._llm import (
    Message,
    ProviderError,
    ProviderUnavailable,
    TokenUsage,
    estimate_prompt_tokens,
    estimate_tokens,
)

logger = logging.getLogger(__name__)

_BASE_HINT = "; is the URL an OpenAI-compatible API base, such as http://HOST:PORT/v1?"

# Hosts whose provider name (gen_ai.provider.name) and prices are known.
_KNOWN_HOSTS = {"api.openai.com": "openai", "api.groq.com": "groq"}


def provider_for(url: str) -> str:
    """The ``gen_ai.provider.name`` for an endpoint URL ("openai_compatible" when unknown)."""
    host = urlsplit(url).hostname or ""
    return _KNOWN_HOSTS.get(host, "openai_compatible")


def completions_url(base_url: str) -> str:
    """``.../chat/completions`` for a base URL such as ``http://127.0.0.1:8000/v1``."""
    url = base_url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


class OpenAICompatibleLLM:
    """Streams chat completions over HTTP (server-sent events).

    Example:
        >>> llm = OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "llama-3.2-1b")
        >>> usage = TokenUsage()
        >>> async for piece in llm.stream([{"role": "user", "content": "hi"}], usage):
        ...     print(piece, end="")
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        provider: str | None = None,
        max_tokens: int = 120,
        timeout: float = 30.0,
    ) -> None:
        """Point the client at an endpoint.

        Args:
            base_url: the API base (``.../v1``) or the full ``.../chat/completions`` URL.
            model: the model name the server expects.
            api_key: sent as a bearer token when given.
            provider: ``gen_ai.provider.name``; guessed from the host when omitted.
            max_tokens: cap on the reply length (voice replies are short).
            timeout: seconds for connecting and between streamed bytes.
        """
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"LLM URL must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("an OpenAI-compatible endpoint needs a model name")
        self.url = completions_url(base_url)
        self.model = model
        self.provider = provider or provider_for(self.url)
        self.max_tokens = max_tokens
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def stream(
        self, messages: Sequence[Message], usage: TokenUsage
    ) -> AsyncGenerator[str, None]:
        """Stream the reply's text pieces; ``usage`` gets the server's counts (or estimates).

        Raises:
            ProviderUnavailable: connection failure, timeout, HTTP 429 or 5xx.
            ProviderError: any other non-200 answer, or an answer that is not an OpenAI
                chat completions stream (not server-sent events, malformed chunks, no
                ``choices``).
        """
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_tokens,
        }
        reported = False
        completions = 0
        text_len = 0
        try:
            async with self._client.stream(
                "POST", self.url, json=body, headers=self._headers
            ) as response:
                await _check_status(response, self.url)
                await _check_event_stream(response, self.url)
                async for data in _sse_data(response):
                    if data == "[DONE]":
                        break
                    chunk = _parse(data)
                    counts = chunk.get("usage")
                    if isinstance(counts, dict):
                        usage.input_tokens = _count(counts, "prompt_tokens", data)
                        usage.output_tokens = _count(counts, "completion_tokens", data)
                        reported = True
                    if "choices" in chunk:
                        completions += 1
                    for piece in _pieces(chunk, data):
                        text_len += len(piece)
                        if not reported:
                            usage.output_tokens += estimate_tokens(piece)
                        yield piece
                if not completions:
                    # 200 and events, but none a chat completion chunk: some other API.
                    raise ProviderError(
                        f"{self.url} streamed no chat completion chunks (no 'choices'): "
                        f"not an OpenAI-compatible chat completions endpoint{_BASE_HINT}"
                    )
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"{type(exc).__name__} talking to {self.url}") from exc
        finally:
            if not reported:
                usage.input_tokens = estimate_prompt_tokens(messages)
                usage.estimated = True
        logger.debug("streamed %d characters from %s", text_len, self.url)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code == 200:
        return
    detail = (await response.aread())[:200].decode("utf-8", "replace").strip()
    message = f"{response.status_code} from {url}: {detail}"
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderUnavailable(message)
    raise ProviderError(message)


async def _check_event_stream(response: httpx.Response, url: str) -> None:
    """A 200 that is not server-sent events is some other API (or a web page), not an error."""
    kind = response.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() == "text/event-stream":
        return
    detail = (await response.aread())[:200].decode("utf-8", "replace").strip()
    raise ProviderError(
        f"{url} answered {kind or 'without a content type'}, not a stream of server-sent "
        f"events (text/event-stream): {detail!r}"
        f"{_BASE_HINT}"
    )


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data:`` payloads of a server-sent event stream (multi-line events joined)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


def _parse(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise _malformed(data) from exc
    if not isinstance(chunk, dict):
        raise _malformed(data)
    if "error" in chunk:
        raise ProviderError(f"stream error: {str(chunk['error'])[:200]}")
    return chunk


def _pieces(chunk: dict[str, Any], data: str) -> list[str]:
    """The text of a chunk's ``choices[].delta.content``; anything else there is malformed."""
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise _malformed(data)
    pieces = []
    for choice in choices:
        delta = (choice.get("delta") or {}) if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise _malformed(data)
        piece = delta.get("content")
        if piece is not None and not isinstance(piece, str):
            raise _malformed(data)
        if piece:
            pieces.append(piece)
    return pieces


def _count(counts: dict[str, Any], name: str, data: str) -> int:
    value = counts.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(data)
    return value


def _malformed(data: str) -> ProviderError:
    return ProviderError(f"malformed stream chunk: {data[:80]!r}")
