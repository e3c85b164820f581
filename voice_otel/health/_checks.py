"""Built-in probes: HTTP endpoint, TCP port, Redis PING, PostgreSQL query, event-loop lag.

A probe is an async callable that returns on success and raises on failure; the monitor
measures its latency and enforces its timeout. Probes that hold a connection pool expose
``aclose()``, which the monitor awaits when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import Container, Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx

SUCCESS_STATUS = range(200, 400)
REACHABLE_STATUS = range(200, 500)


class CheckFailed(Exception):
    """Raise from a check to fail it with a clean reason (shown without a type name)."""


class HttpCheck:
    """``method url`` answers with a status in ``healthy_status``."""

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        healthy_status: Container[int] = SUCCESS_STATUS,
        verify: bool = True,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an HTTP check needs an http:// or https:// URL with a host")
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers or {})
        _check_statuses(healthy_status)
        self.healthy_status = healthy_status
        self.verify = verify
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __call__(self) -> None:
        if self._client is None:
            # Redirects are not followed: a redirect to a login page is not a healthy API.
            self._client = httpx.AsyncClient(
                verify=self.verify, follow_redirects=False, timeout=self.timeout
            )
        response = await self._client.request(self.method, self.url, headers=self.headers)
        await response.aclose()
        if response.status_code not in self.healthy_status:
            raise CheckFailed(f"HTTP {response.status_code} {response.reason_phrase}".strip())

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _check_statuses(healthy_status: Container[int]) -> None:
    """``healthy_status`` holds HTTP status codes: ints in 100-599, at least one."""
    if isinstance(healthy_status, (str, bytes)):
        raise TypeError(f"healthy_status must hold int status codes, got {healthy_status!r}")
    if isinstance(healthy_status, range):
        codes: Iterable[object] = (healthy_status[0], healthy_status[-1]) if healthy_status else ()
    elif isinstance(healthy_status, Iterable):
        codes = list(healthy_status)
    else:
        return  # a container we cannot list (custom __contains__): trust it
    if not codes:
        raise ValueError("healthy_status is empty: no answer could ever be healthy")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"healthy_status must hold int status codes, got {code!r}")
        if not 100 <= code <= 599:
            raise ValueError(f"healthy_status must hold HTTP status codes 100-599, got {code}")


class TcpCheck:
    """A TCP connection to ``host:port`` opens."""

    def __init__(self, host: str, port: int) -> None:
        if not host or not 0 < port < 65536:
            raise ValueError("a TCP check needs a host and a port in 1-65535")
        self.host = host
        self.port = port

    async def __call__(self) -> None:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        with contextlib.suppress(OSError):  # the peer closing first is still a good connect
            await writer.wait_closed()


def _require(module: str, check: str) -> None:
    """Fail at registration, not in the background, when the client library is missing."""
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"a {check} check needs the {module} package: pip install 'voice-otel[health]'"
        )


class RedisCheck:
    """Redis answers ``PING`` (a fresh connection each time, so an outage is seen)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("a Redis check needs a redis://, rediss:// or unix:// URL")
        _require("redis", "Redis")
        self.url = url
        self.timeout = timeout

    async def __call__(self) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise CheckFailed("missing package: pip install 'voice-otel[health]'") from exc

        client = aioredis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        try:
            if not await client.ping():
                raise CheckFailed("PING was not answered with PONG")
        finally:
            await client.aclose()


class PostgresCheck:
    """PostgreSQL accepts a connection and answers ``query``."""

    def __init__(self, dsn: str, *, query: str = "SELECT 1", timeout: float) -> None:
        if not dsn:
            raise ValueError("a PostgreSQL check needs a DSN")
        _require("psycopg", "PostgreSQL")
        self.dsn = dsn
        self.query = query
        self.timeout = timeout

    async def __call__(self) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise CheckFailed("missing package: pip install 'voice-otel[health]'") from exc

        # libpq's connect_timeout is whole seconds, minimum 2; the monitor's timeout is exact.
        connect_timeout = max(2, int(self.timeout + 0.999))
        conn = await psycopg.AsyncConnection.connect(
            self.dsn, connect_timeout=connect_timeout, autocommit=True
        )
        async with conn:
            cursor = await conn.execute(self.query)
            await cursor.fetchone()


class OrchestratorCheck:
    """The agent process itself: its event loop is responsive and its memory within bounds.

    The latency of this check is the event-loop lag of the watched loop: the time it takes
    that loop to run a callback scheduled from the monitor's thread. A loop blocked by
    synchronous code (the classic cause of choppy audio) makes the check time out.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_memory_bytes: int | None = None,
    ) -> None:
        self.loop = loop
        self.max_memory_bytes = max_memory_bytes

    async def __call__(self) -> None:
        watched = self.loop
        here = asyncio.get_running_loop()
        if watched is not None and watched is not here and watched.is_running():
            answered = here.create_future()

            def pong() -> None:
                if not answered.done():
                    answered.set_result(time.perf_counter())

            def ping() -> None:
                with contextlib.suppress(RuntimeError):  # the monitor stopped meanwhile
                    here.call_soon_threadsafe(pong)

            watched.call_soon_threadsafe(ping)
            await answered

        if self.max_memory_bytes is not None:
            import psutil

            rss = psutil.Process().memory_info().rss
            if rss > self.max_memory_bytes:
                raise CheckFailed(
                    f"resident memory {rss // 2**20} MiB above {self.max_memory_bytes // 2**20} MiB"
                )


def livekit_http_url(url: str) -> str:
    """The HTTP URL of a LiveKit server given its ws(s):// or http(s):// URL."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a LiveKit URL looks like wss://host or ws://host:7880")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", "", ""))
