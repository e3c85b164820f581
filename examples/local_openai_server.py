"""A small local stand-in for an OpenAI-compatible speech and chat API, for trying things offline.

Run it::

    pip install "voice-otel[demo]"        # pocketsphinx and espeak-ng, for real STT and TTS
    python examples/local_openai_server.py --port 8000
    # -> serving an OpenAI-compatible API at http://127.0.0.1:8000/v1

It answers the three calls a voice agent makes, the way OpenAI's API does:

- ``POST /v1/audio/transcriptions``: a multipart upload (``file``: a 16 kHz mono 16-bit WAV,
  ``model``); JSON ``{"text": ..., "usage": ...}``, or with ``stream=true`` server-sent events
  ``transcript.text.delta`` ... ``transcript.text.done``.
- ``POST /v1/chat/completions``: ``stream: true`` gives ``chat.completion.chunk`` events and
  ``data: [DONE]`` (with ``stream_options.include_usage``, a last chunk with token counts);
  otherwise one ``chat.completion``.
- ``POST /v1/audio/speech``: ``{"model", "input", "voice", "response_format": "pcm" | "wav"}``;
  the audio is streamed in chunks as it is synthesised (16-bit mono; the sample rate is in the
  ``X-Sample-Rate`` header).
- ``GET /v1/models``: the model list, for health probes.

With the demo engines installed it is a real offline speech server: pocketsphinx transcribes,
espeak-ng speaks, and voice_otel's local responder (keyword rules, not a language model) writes
the replies. ``--engines synthetic`` needs nothing: transcripts are placeholders and speech is
silence of a plausible length.

To simulate a provider outage, ``POST /control/outage`` with ``{"seconds": 30}``: every
``/v1`` call answers 503 until it ends (``DELETE /control/outage`` ends it early). When the
variable ``LOCAL_OPENAI_SERVER_API_KEY`` is set, ``/v1`` calls need
``Authorization: Bearer <that key>``. It listens on 127.0.0.1 only unless told otherwise; it is
a test double, not a server to expose.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import io
import json
import logging
import math
import os
import struct
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from voice_otel.demo import LocalResponder, TokenUsage

logger = logging.getLogger("local_openai_server")

API_KEY_ENV = "LOCAL_OPENAI_SERVER_API_KEY"
MODELS = ("whisper-1", "gpt-4o-mini", "gpt-4o-mini-tts", "local-responder")
MAX_BODY_BYTES = 25 * 1024 * 1024  # OpenAI's upload limit for transcriptions
SYNTHETIC_RATE = 24_000


class SpeechEngines(Protocol):
    """Speech-to-text and text-to-speech behind the API."""

    name: str
    tts_sample_rate: int

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """The words in 16-bit mono PCM."""
        ...

    def speak(self, text: str) -> Iterator[bytes]:
        """16-bit mono PCM at ``tts_sample_rate``, in chunks, as it is synthesised."""
        ...


class DemoEngines:
    """pocketsphinx and espeak-ng, from ``pip install voice-otel[demo]``."""

    name = "demo (pocketsphinx, espeak-ng)"

    def __init__(self) -> None:
        from voice_otel.demo import EspeakTTS, PocketsphinxSTT

        self._stt = PocketsphinxSTT()
        self._tts = EspeakTTS()
        self.tts_sample_rate = self._tts.sample_rate

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return self._stt.transcribe(pcm, sample_rate)

    def speak(self, text: str) -> Iterator[bytes]:
        return self._tts.stream(text)


class SyntheticEngines:
    """No engines: placeholder transcripts and silence, so the API works anywhere."""

    name = "synthetic (placeholder transcripts, silent speech)"
    tts_sample_rate = SYNTHETIC_RATE

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        seconds = len(pcm) / 2 / sample_rate
        return f"this is a synthetic transcript of {seconds:.1f} seconds of audio"

    def speak(self, text: str) -> Iterator[bytes]:
        # About 70 ms of speech per character, in 100 ms chunks, paced a little like a TTS.
        chunk = b"\0" * (SYNTHETIC_RATE // 10 * 2)
        for _ in range(max(1, math.ceil(len(text) * 0.7))):
            time.sleep(0.002)
            yield chunk


def load_engines(kind: str) -> SpeechEngines:
    """``demo``, ``synthetic``, or ``auto`` (demo when pocketsphinx and espeak-ng load)."""
    if kind == "synthetic":
        return SyntheticEngines()
    try:
        return DemoEngines()
    except (RuntimeError, OSError) as exc:
        if kind == "demo":
            raise
        logger.warning("demo engines unavailable (%s); using synthetic ones", exc)
        return SyntheticEngines()


class ApiError(Exception):
    """An error answer in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class ServerState:
    """What the handlers share: engines, the responder, the outage switch, the API key."""

    def __init__(self, engines: SpeechEngines, api_key: str | None, first_token_delay: float):
        self.engines = engines
        self.api_key = api_key
        self.responder = LocalResponder(first_token_delay=first_token_delay, word_delay=0.01)
        self._outage_until = 0.0
        self._lock = threading.Lock()

    def start_outage(self, seconds: float) -> None:
        """Answer every ``/v1`` call with 503 for ``seconds``."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def end_outage(self) -> None:
        """End a running outage now."""
        with self._lock:
            self._outage_until = 0.0

    @property
    def in_outage(self) -> bool:
        """Whether an outage is running."""
        with self._lock:
            return time.monotonic() < self._outage_until


class Handler(BaseHTTPRequestHandler):
    """One request; ``server.state`` holds what the handlers share."""

    protocol_version = "HTTP/1.1"
    server_version = "local-openai-server/1"
    state: ServerState  # set on the subclass that LocalOpenAIServer makes
    _raw_body = b""

    # -- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch({"/v1/models": self._models})

    def do_POST(self) -> None:
        self._dispatch(
            {
                "/v1/audio/transcriptions": self._transcriptions,
                "/v1/chat/completions": self._chat,
                "/v1/audio/speech": self._speech,
                "/control/outage": self._outage_start,
            }
        )

    def do_DELETE(self) -> None:
        self._dispatch({"/control/outage": self._outage_end})

    def _dispatch(self, routes: dict[str, Any]) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        route = routes.get(path)
        try:
            # Read the whole body first, even for a request about to be refused, so that the
            # connection stays usable for the client's next request.
            self._raw_body = self._read_body()
            if route is None:
                raise ApiError(404, f"no route {self.command} {path}", "not_found")
            if path.startswith("/v1/"):
                self._authorize()
                if self.state.in_outage:
                    raise ApiError(
                        503, "the service is temporarily unavailable (simulated)", "server_error"
                    )
            route()
        except ApiError as exc:
            self._send_json(exc.status, {"error": {"message": str(exc), "type": exc.kind}})
        except (BrokenPipeError, ConnectionResetError):
            logger.info("client went away during %s %s", self.command, path)

    def _authorize(self) -> None:
        if not self.state.api_key:
            return
        sent = self.headers.get("Authorization", "")
        expected = f"Bearer {self.state.api_key}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise ApiError(401, "missing or wrong API key", "authentication_error")

    # -- endpoints ----------------------------------------------------------------------------

    def _models(self) -> None:
        data = [{"id": m, "object": "model", "owned_by": "local"} for m in MODELS]
        self._send_json(200, {"object": "list", "data": data})

    def _transcriptions(self) -> None:
        form = self._multipart()
        upload = form.get("file")
        if not upload:
            raise ApiError(400, "'file' is required")
        pcm, rate = _read_wav(upload)
        text = self.state.engines.transcribe(pcm, rate)
        usage = {"type": "duration", "seconds": math.ceil(len(pcm) / 2 / rate)}
        if form.get("stream", b"").decode().lower() != "true":
            self._send_json(200, {"text": text, "usage": usage})
            return
        self._start_events()
        for i, word in enumerate(text.split()):
            self._event({"type": "transcript.text.delta", "delta": word if i == 0 else f" {word}"})
        self._event({"type": "transcript.text.done", "text": text, "usage": usage})
        self._end_chunks()

    def _chat(self) -> None:
        body = self._json()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list")
        model = str(body.get("model") or "local-responder")
        usage = TokenUsage()
        pieces = _stream_pieces(self.state.responder, messages, usage)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())

        if not body.get("stream"):
            text = "".join(pieces)
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage(usage),
                },
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }

        self._start_events()
        self._event(chunk({"role": "assistant", "content": ""}))
        for piece in pieces:
            self._event(chunk({"content": piece}))
        self._event(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**chunk({}), "choices": [], "usage": _usage(usage)})
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _speech(self) -> None:
        body = self._json()
        text = str(body.get("input") or "").strip()
        if not text:
            raise ApiError(400, "'input' is required")
        if len(text) > 4096:
            raise ApiError(400, "'input' is longer than 4096 characters")
        fmt = body.get("response_format", "pcm")
        if fmt not in ("pcm", "wav"):
            raise ApiError(400, f"response_format {fmt!r}: this stand-in speaks pcm and wav")
        rate = self.state.engines.tts_sample_rate
        content_type = "audio/pcm" if fmt == "pcm" else "audio/wav"
        self._start_chunks(content_type, {"X-Sample-Rate": str(rate)})
        if fmt == "wav":
            self._write_chunk(_streaming_wav_header(rate))
        for pcm in self.state.engines.speak(text):
            self._write_chunk(pcm)
        self._end_chunks()

    def _outage_start(self) -> None:
        seconds = float(self._json().get("seconds", 30))
        if not 0 < seconds <= 3600:
            raise ApiError(400, "'seconds' must be in (0, 3600]")
        self.state.start_outage(seconds)
        logger.info("outage started for %.1f s", seconds)
        self._send_json(200, {"outage_seconds": seconds})

    def _outage_end(self) -> None:
        self.state.end_outage()
        logger.info("outage ended")
        self._send_json(200, {"outage_seconds": 0})

    # -- request bodies -----------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, "request body too large")
        return self.rfile.read(length) if length else b""

    def _body(self) -> bytes:
        return self._raw_body

    def _json(self) -> dict[str, Any]:
        try:
            body = json.loads(self._body() or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        return body

    def _multipart(self) -> dict[str, bytes]:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise ApiError(400, "expected multipart/form-data")
        raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + self._body()
        message = BytesParser(policy=HTTP).parsebytes(raw)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload
        return fields

    # -- responses ----------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_chunks(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _start_events(self) -> None:
        self._start_chunks("text/event-stream")

    def _event(self, payload: dict[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _stream_pieces(
    responder: LocalResponder, messages: list[Any], usage: TokenUsage
) -> Iterator[str]:
    """The responder's reply piece by piece, at its own pace, as a hosted model streams.

    The responder is asynchronous and each request has a thread of its own: drive it on a
    private event loop, one piece at a time.
    """
    loop = asyncio.new_event_loop()
    pieces = responder.stream(messages, usage)
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(pieces))
            except StopAsyncIteration:
                break
    finally:
        loop.run_until_complete(pieces.aclose())
        loop.close()


def _usage(usage: TokenUsage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _read_wav(data: bytes) -> tuple[bytes, int]:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ApiError(400, "the stand-in reads mono 16-bit WAV")
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ApiError(400, f"'file' is not a WAV file: {exc}") from exc


def _streaming_wav_header(rate: int) -> bytes:
    """A WAV header for a stream of unknown length (sizes set to the maximum)."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )


class QuietServer(ThreadingHTTPServer):
    """A threading server that logs a client hanging up as what it is, not as a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            logger.debug("client %s hung up", client_address)
        else:
            logger.error("error serving %s", client_address, exc_info=error)


class LocalOpenAIServer:
    """The stand-in server on a background thread, for use from Python (tests, examples).

    Example::

        with LocalOpenAIServer(engines="synthetic") as server:
            print(server.base_url)        # http://127.0.0.1:<port>/v1
            server.state.start_outage(10)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        engines: str = "auto",
        api_key: str | None = None,
        first_token_delay: float = 0.2,
    ) -> None:
        self.state = ServerState(load_engines(engines), api_key, first_token_delay)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = QuietServer((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LocalOpenAIServer:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="local-openai-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    parser.add_argument("--port", type=int, default=8000, help="port, 0 for any free one [8000]")
    parser.add_argument(
        "--engines",
        choices=("auto", "demo", "synthetic"),
        default="auto",
        help="demo: pocketsphinx and espeak-ng; synthetic: no engines; auto: demo if installed",
    )
    parser.add_argument(
        "--first-token-delay",
        type=float,
        default=0.2,
        help="seconds before the first streamed chat token [0.2]",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    server = LocalOpenAIServer(
        args.host,
        args.port,
        args.engines,
        api_key=os.environ.get(API_KEY_ENV) or None,
        first_token_delay=args.first_token_delay,
    )
    logger.info("engines: %s", server.state.engines.name)
    print(f"serving an OpenAI-compatible API at {server.base_url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
