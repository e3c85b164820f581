"""Health checks for a voice agent, reported as OpenTelemetry gauges; system metrics.

```python
from voice_otel.health import HealthMonitor, enable_system_metrics

monitor = HealthMonitor()
monitor.add_llm_provider("openai", "https://api.openai.com/v1/models")
monitor.add_redis("redis://127.0.0.1:6379/0")
monitor.add_orchestrator()
monitor.start()
enable_system_metrics()
```

See ``docs/health.md``.
"""

from __future__ import annotations

from voice_otel._system_metrics import (
    DEFAULT_SYSTEM_METRICS,
    disable_system_metrics,
    enable_system_metrics,
)
from voice_otel.health._checks import CheckFailed
from voice_otel.health._monitor import HealthMonitor
from voice_otel.health._pipeline import PipelineHealth
from voice_otel.health._sanitize import sanitize_reason
from voice_otel.health._types import (
    ComponentHealth,
    HealthState,
    PipelineStats,
    Thresholds,
    Trend,
)

__all__ = [
    "DEFAULT_SYSTEM_METRICS",
    "CheckFailed",
    "ComponentHealth",
    "HealthMonitor",
    "HealthState",
    "PipelineHealth",
    "PipelineStats",
    "Thresholds",
    "Trend",
    "disable_system_metrics",
    "enable_system_metrics",
    "sanitize_reason",
]
