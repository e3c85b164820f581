"""How voice_otel words a failed HTTP call: no answer, an error page, an answer of the wrong kind.

Shared by the Alertmanager client, the Grafana importer and the Prometheus report source, so the
same failure reads the same everywhere: one line, no HTML, no address where none was asked for.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx

_HTML_HIDDEN = re.compile(r"(?is)<(head|script|style)\b.*?</\1\s*>")
_HTML_TAG = re.compile(r"(?s)<[^>]*>")


def describe_failure(exc: httpx.HTTPError, service: str, timeout: float) -> str:
    """One line on a request that got no answer: ``cannot reach <service>: <reason>``.

    ``service`` names the server and its address, e.g. ``Grafana at http://localhost:3000``.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot reach {service}: no connection within {timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"{service} did not answer within {timeout:g}s"
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", reason)  # "[Errno 111] Connection refused"
    reason = reason[:1].lower() + reason[1:] if reason else type(exc).__name__
    return f"cannot reach {service}: {reason}"


def body_excerpt(response: httpx.Response, limit: int = 100) -> str:
    """The gist of an error answer on one line: an HTML page's text, a JSON ``message``."""
    text = response.text
    if "html" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_HIDDEN.sub(" ", text)))
    else:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
        elif isinstance(body, str):
            text = body
    return _shorten(" ".join(text.split()), limit)


def json_excerpt(body: Any, limit: int = 60) -> str:
    """A decoded JSON answer shown short: ``{"a": 1, ...``, or ``an empty body`` for None."""
    if body is None:
        return "an empty body"
    return _shorten(json.dumps(body), limit)


def not_json(request: str, response: httpx.Response) -> str:
    """``<request> answered <status> with <content type>, not JSON``."""
    kind = response.headers.get("content-type", "").partition(";")[0] or "a body"
    return f"{request} answered {response.status_code} with {kind}, not JSON"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
