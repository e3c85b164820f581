"""Response bodies of the endpoints the FastAPI integration adds (they shape the OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

State = Literal["healthy", "degraded", "unhealthy"]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of these endpoints."""

    error: str = Field(description="A stable machine-readable code, e.g. 'unauthorized'.")
    detail: str = Field(description="What went wrong, for a human; never a stack trace.")


class HealthStatus(BaseModel):
    status: State


class TrendReport(BaseModel):
    samples: int
    success_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_mean_s: float | None


class PipelineReport(BaseModel):
    calls: int
    errors: int
    error_ratio: float | None
    state: State | None
    last_error_type: str | None


class ComponentReport(BaseModel):
    name: str
    kind: str
    critical: bool
    state: Literal["healthy", "degraded", "unhealthy", "pending"]
    probe_state: State | None
    latency_s: float | None
    consecutive_failures: int
    last_error: str | None
    last_checked: float | None = Field(description="Epoch seconds of the last check.")
    last_success_age_s: float | None
    checks: int
    trend: TrendReport
    pipeline: PipelineReport | None


class DetailedHealth(BaseModel):
    status: State
    checked_at: float
    components: list[ComponentReport]


class AlertSummary(BaseModel):
    total: int
    by_state: dict[str, int]
    by_severity: dict[str, int]


class AlertsReport(BaseModel):
    summary: AlertSummary
    alerts: list[dict[str, Any]] = Field(
        description="Alertmanager API v2 alerts, each with an added lifecycle 'state'."
    )


class DashboardSummary(BaseModel):
    uid: str
    title: str
    description: str = ""


class DashboardList(BaseModel):
    dashboards: list[DashboardSummary]
