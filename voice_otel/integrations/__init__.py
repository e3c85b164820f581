"""Integrations with web frameworks and voice-agent frameworks.

- :mod:`voice_otel.integrations.fastapi`: one call adds tracing (route templates), health,
  Prometheus, alert and dashboard endpoints to a FastAPI app (``pip install
  voice-otel[fastapi]``; see ``docs/http.md``).
- :mod:`voice_otel.integrations.pipecat`: conversation, turn and stage telemetry for a Pipecat
  pipeline from one observer.
- :mod:`voice_otel.integrations.livekit`: the same for a LiveKit Agents ``AgentSession``.

Each module imports its framework; importing this package imports none of them.
"""

from __future__ import annotations
