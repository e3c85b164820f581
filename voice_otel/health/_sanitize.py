"""Error reasons that are safe to show: no credentials, no stack traces, bounded length."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_REASON_LENGTH = 200
_MASK = "***"
_SECRET_WORDS = (
    r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|key|auth|authorization|"
    r"credentials?|signature|sig"
)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]*@")
_KEY_VALUE = re.compile(
    rf"(?i)(?P<key>\b(?:{_SECRET_WORDS}))(?P<sep>\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,]+)"
)
_SCHEME_TOKEN = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{6,}")
_SECRET_PARAM = re.compile(rf"(?i)(?:{_SECRET_WORDS})")


def secrets_in(target: str) -> tuple[str, ...]:
    """The credentials embedded in a URL or DSN, so reasons can be scrubbed of them verbatim.

    Handles ``scheme://user:password@host/...``, secret-looking query parameters
    (``?token=...``) and libpq ``key=value`` strings (``password=...``).
    """
    found: list[str] = []
    try:
        parts = urlsplit(target)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [v for k, v in parse_qsl(parts.query) if _SECRET_PARAM.search(k)]
    except ValueError:
        pass
    found += [m.group("value").strip("'\"") for m in _KEY_VALUE.finditer(target)]
    return tuple(s for s in dict.fromkeys(found) if len(s) >= 3)


def sanitize_reason(error: BaseException | str, secrets: Iterable[str] = ()) -> str:
    """A one-line, bounded, credential-free description of a failure.

    Args:
        error: The exception (its type name is kept) or a message.
        secrets: Strings that must never appear (e.g. from :func:`secrets_in`).

    Returns:
        At most ``MAX_REASON_LENGTH`` characters, first line only, with URL userinfo,
        ``password=``/``token=`` style values and bearer tokens masked.
    """
    if isinstance(error, BaseException):
        message = str(error).strip()
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    else:
        text = str(error)

    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, _MASK)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first_line = first_line.split("Traceback (most recent call last)")[0].strip()

    cleaned = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{_MASK}@", first_line)
    cleaned = _SCHEME_TOKEN.sub(lambda m: f"{m.group('scheme')} {_MASK}", cleaned)
    cleaned = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{_MASK}", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip() or "failed"

    if len(cleaned) > MAX_REASON_LENGTH:
        cleaned = cleaned[: MAX_REASON_LENGTH - 3].rstrip() + "..."
    return cleaned


def redact_url(url: str) -> str:
    """``url`` with its userinfo and secret-looking query values masked (for logs)."""
    return sanitize_reason(url, secrets_in(url))
