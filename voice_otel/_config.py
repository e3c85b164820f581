"""Settings for :func:`voice_otel.configure`: arguments, then environment, then defaults.

Every setting is checked here, before anything starts, and a bad one raises
:class:`ConfigurationError` with a message that says what to change.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

DEFAULT_PROMETHEUS_PORT = 9464
DEFAULT_JSON_PATH = "voice-otel-telemetry.jsonl"
PROTOCOLS = ("grpc", "http/protobuf")


class ConfigurationError(ValueError):
    """A setting given to configure() (or read from the environment) is invalid."""


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``configure()`` builds it; it is compared to detect repeats."""

    service_name: str
    service_version: str | None
    environment: str | None
    otlp_endpoint: str | None
    otlp_protocol: Literal["grpc", "http/protobuf"]
    metric_export_interval: float
    export_timeout: float
    max_queue_size: int
    prometheus_port: int | None
    prometheus_host: str
    json_path: Path | None
    capture_content: bool
    content_max_length: int
    redact: Callable[[str], str] | None
    latency_objective: float
    prices: Any
    enabled: bool
    strict: bool
    handle_sigterm: bool

    @property
    def embedded(self) -> bool:
        """True when no OTLP endpoint is set: everything is served in-process."""
        return self.otlp_endpoint is None


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_bool(name: str) -> bool | None:
    value = _env(name)
    if value is None:
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={value!r}: use true or false")


def _flag(name: str, value: Any) -> bool:
    """An on/off argument: a real bool, so ``"false"`` cannot switch something on."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")
    return value


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    return value


MAX_SERVICE_NAME = 255


def check_service_name(source: str, value: str) -> str:
    """``service.name`` is a label in every backend: one printable line of bounded length."""
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ConfigurationError(
            f"{source} {value!r} contains a control character (newline, tab, ...); "
            "use one line of printable text"
        )
    if len(value) > MAX_SERVICE_NAME:
        raise ConfigurationError(
            f"{source} is {len(value)} characters long; use at most {MAX_SERVICE_NAME}"
        )
    return value


def _env_float(name: str) -> float | None:
    value = _env(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a number") from None


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if value <= 0:
        raise ConfigurationError(f"{name} must be greater than 0, got {value!r}")
    return float(value)


def _endpoint(value: str, source: str = "otlp_endpoint") -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{source} {value!r} is not an http(s) URL: use http://HOST:PORT or https://HOST:PORT "
            "(e.g. http://localhost:4317 for gRPC, http://localhost:4318 for HTTP)"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigurationError(f"{source} {value!r} has an invalid port") from None
    return value.rstrip("/")


def _port(value: int | bool | None, default: int | None) -> int | None:
    if value is None:
        return default
    if value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError(
            f"prometheus_port must be a port number 0-65535 (0 picks a free one) or False to "
            f"disable the /metrics endpoint, got {value!r}"
        )
    return value


def resolve(**kw: Any) -> Settings:
    """Merge arguments (None = not given) with ``OTEL_*`` / ``VOICE_OTEL_*`` variables."""
    # A bad value read from the environment is reported under the variable's name.
    endpoint = kw["otlp_endpoint"]
    if endpoint:
        endpoint = _endpoint(endpoint)
    elif endpoint := _env("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = _endpoint(endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT")

    protocol = kw["otlp_protocol"]
    protocol_source = "otlp_protocol"
    if not protocol and (protocol := _env("OTEL_EXPORTER_OTLP_PROTOCOL")):
        protocol_source = "OTEL_EXPORTER_OTLP_PROTOCOL"
    if protocol is None:
        # The spec's default is http/protobuf; a :4317 endpoint is the gRPC port by convention.
        port = urlsplit(endpoint).port if endpoint else None
        protocol = "grpc" if port == 4317 else "http/protobuf"
    if protocol not in PROTOCOLS:
        raise ConfigurationError(
            f"{protocol_source} {protocol!r} is not supported: use 'grpc' or 'http/protobuf'"
        )

    interval = kw["metric_export_interval"]
    if interval is None:
        millis = _env_float("OTEL_METRIC_EXPORT_INTERVAL")
        if millis is not None:
            interval = _positive("OTEL_METRIC_EXPORT_INTERVAL (milliseconds)", millis) / 1000
    interval = _positive("metric_export_interval (seconds)", 10.0 if interval is None else interval)
    timeout = _positive("export_timeout (seconds)", kw["export_timeout"])
    queue = kw["max_queue_size"]
    if isinstance(queue, bool) or not isinstance(queue, int) or queue < 1:
        raise ConfigurationError(f"max_queue_size must be a positive integer, got {queue!r}")

    port_arg = kw["prometheus_port"]
    if port_arg is None and _env("VOICE_OTEL_PROMETHEUS_PORT"):
        raw = _env("VOICE_OTEL_PROMETHEUS_PORT") or ""
        port_arg = False if raw.lower() in ("off", "false", "none") else _int_env(raw)
    prometheus_port = _port(port_arg, None if endpoint else DEFAULT_PROMETHEUS_PORT)

    json_arg = kw["json_path"]
    if isinstance(json_arg, str) and not json_arg.strip():
        raise ConfigurationError(
            f"json_path {json_arg!r} is empty: pass a file path, True (the default file) or "
            "False (off)"
        )
    if json_arg is None:
        json_arg = _env("VOICE_OTEL_JSON_PATH")
        if json_arg and json_arg.lower() in ("off", "false", "none"):
            json_arg = False
    if json_arg is False:
        json_path = None
    elif json_arg is True:
        json_path = Path(DEFAULT_JSON_PATH)
    elif isinstance(json_arg, str | os.PathLike) and str(json_arg):
        json_path = Path(json_arg)
    elif json_arg is None or json_arg == "":
        json_path = None if endpoint else Path(DEFAULT_JSON_PATH)
    else:
        raise ConfigurationError(
            f"json_path must be a file path, True (the default file) or False (off), "
            f"got {json_arg!r}"
        )

    capture = kw["capture_content"]
    if capture is None:
        capture = _env_bool("VOICE_OTEL_CAPTURE_CONTENT") or False
    capture = _flag("capture_content", capture)
    max_len = kw["content_max_length"]
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ConfigurationError(f"content_max_length must be a positive integer, not {max_len!r}")
    redact = kw["redact"]
    if redact is not None and not callable(redact):
        raise ConfigurationError("redact must be a function taking and returning a string")

    objective = kw["latency_objective"]
    objective_source = "latency_objective (seconds)"
    if objective is None:
        objective = _env_float("VOICE_OTEL_LATENCY_OBJECTIVE")
        objective_source = "VOICE_OTEL_LATENCY_OBJECTIVE (seconds)"
        if objective is None:
            objective = 1.0
    objective = _positive(objective_source, objective)

    enabled = kw["enabled"]
    if enabled is None:
        enabled = not (_env_bool("OTEL_SDK_DISABLED") or False)
    enabled = _flag("enabled", enabled)

    name = _text("service_name", kw["service_name"])
    source = "service_name"
    if name is None and _env("OTEL_SERVICE_NAME"):
        name, source = _env("OTEL_SERVICE_NAME"), "OTEL_SERVICE_NAME"
    name = check_service_name(source, name or "voice-agent")
    return Settings(
        service_name=name,
        service_version=_text("service_version", kw["service_version"]),
        environment=_text("environment", kw["environment"]) or _env("VOICE_OTEL_ENVIRONMENT"),
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        metric_export_interval=interval,
        export_timeout=timeout,
        max_queue_size=queue,
        prometheus_port=prometheus_port,
        prometheus_host=kw["prometheus_host"],
        json_path=json_path,
        capture_content=capture,
        content_max_length=max_len,
        redact=redact,
        latency_objective=objective,
        prices=kw["prices"],
        enabled=enabled,
        strict=_flag("strict", kw["strict"]),
        handle_sigterm=_flag("handle_sigterm", kw["handle_sigterm"]),
    )


def _int_env(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(
            f"VOICE_OTEL_PROMETHEUS_PORT={raw!r} is not a port number (or 'off')"
        ) from None
