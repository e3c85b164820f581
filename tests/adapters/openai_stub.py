"""A loopback OpenAI-compatible chat-completions server for the adapter tests.

The frameworks' real OpenAI clients (Pipecat's ``OpenAILLMService``, LiveKit's
``inference.LLM``) talk to it over HTTP on 127.0.0.1, so the LLM stage runs the code users run:
request, streamed chunks, usage in the last chunk. Each request takes the next scripted
:class:`Reply`; the stub records what it was asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """One scripted completion: its text chunks, pacing and reported usage.

    A ``status`` other than 200 answers with that HTTP error instead.
    """

    chunks: tuple[str, ...] = ()
    first_chunk_delay: float = 0.2
    chunk_interval: float = 0.02
    prompt_tokens: int = 40
    completion_tokens: int = 12
    status: int = 200

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class ChatStub:
    """The running stub: its base URL and the requests it answered."""

    base_url: str
    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def user_messages(self) -> list[str]:
        """The last user message of every request, in order."""
        found = []
        for body in self.requests:
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            if users:
                content = users[-1].get("content")
                if isinstance(content, list):
                    content = " ".join(part.get("text", "") for part in content)
                found.append(str(content))
        return found


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@asynccontextmanager
async def serve_chat(replies: list[Reply]) -> AsyncIterator[ChatStub]:
    """Serve ``replies`` (in order, the last one repeated) on a free loopback port."""
    stub = ChatStub(base_url="", replies=list(replies))

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        index = min(len(stub.requests), len(stub.replies) - 1)
        stub.requests.append(body)
        reply = stub.replies[index]
        model = str(body.get("model", "stub"))
        if reply.status != 200:
            error = {"message": "scripted failure", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=reply.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        try:
            await asyncio.sleep(reply.first_chunk_delay)
            await send(_chunk(model, {"role": "assistant", "content": ""}))
            for i, text in enumerate(reply.chunks):
                if i:
                    await asyncio.sleep(reply.chunk_interval)
                await send(_chunk(model, {"content": text}))
            await send(_chunk(model, {}, "stop"))
            usage = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            }
            await send({**_chunk(model, {}), "choices": [], "usage": usage})
            await send("[DONE]")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client hung up: an interrupted generation
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stub.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield stub
    finally:
        await runner.cleanup()
