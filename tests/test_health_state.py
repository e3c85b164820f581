"""The health state machine, trends, pipeline windows and reason sanitizing (no threads)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice_otel.health import HealthState, PipelineHealth, Thresholds, sanitize_reason
from voice_otel.health._component import Component, Sample, trend
from voice_otel.health._pipeline import PipelineWindow
from voice_otel.health._sanitize import MAX_REASON_LENGTH, secrets_in

H, D, U = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY


def component(**thresholds: object) -> Component:
    return Component(
        "redis",
        "redis",
        critical=True,
        thresholds=Thresholds(**thresholds),  # type: ignore[arg-type]
        history=5,
        probed=True,
    )


def test_state_codes_match_the_contract() -> None:
    assert (H.code, D.code, U.code) == (2, 1, 0)
    assert HealthState.worst(H, U, D) is U
    assert HealthState.worst() is H


def test_failures_degrade_then_make_unhealthy_after_the_threshold() -> None:
    c = component(failures_before_unhealthy=3)
    assert c.record(True, 0.01, None) is H
    assert c.record(False, 0.01, "refused") is D
    assert c.record(False, 0.01, "refused") is D
    assert c.record(False, 0.01, "refused") is U
    snap = c.snapshot()
    assert snap.consecutive_failures == 3
    assert snap.last_error == "refused"


def test_recovery_needs_consecutive_successes() -> None:
    c = component(failures_before_unhealthy=1, successes_before_healthy=3)
    assert c.record(False, 0.01, "down") is U
    assert c.record(True, 0.01, None) is D
    assert c.record(True, 0.01, None) is D
    assert c.record(False, 0.01, "down") is U  # a failure restarts the count
    assert [c.record(True, 0.01, None) for _ in range(3)] == [D, D, H]
    assert c.snapshot().consecutive_failures == 0


def test_a_failure_while_unhealthy_keeps_it_unhealthy() -> None:
    c = component(failures_before_unhealthy=2, successes_before_healthy=2)
    c.record(False, 0.01, "x")
    assert c.record(False, 0.01, "x") is U
    assert c.record(True, 0.01, None) is D
    assert c.record(False, 0.01, "x") is U


def test_latency_thresholds_degrade_or_fail() -> None:
    c = component(degraded_latency=0.2, unhealthy_latency=1.0, failures_before_unhealthy=2)
    assert c.record(True, 0.1, None) is H
    assert c.record(True, 0.5, None) is D
    assert c.record(True, 1.5, None) is D  # counts as the first failure
    assert "latency" in (c.snapshot().last_error or "")
    assert c.record(True, 1.5, None) is U


def test_first_result_sets_the_state() -> None:
    c = component()
    assert c.snapshot().state is None
    assert c.snapshot().as_dict()["state"] == "pending"
    assert c.record(True, 0.01, None) is H


def test_history_is_bounded_and_trend_reports_rate_and_latency() -> None:
    c = component(failures_before_unhealthy=10)
    for latency in (0.1, 0.2, 0.3, 0.4):
        c.record(True, latency, None)
    c.record(False, 2.0, "timeout")
    c.record(True, 0.5, None)  # pushes the oldest (0.1) out of a history of 5
    t = c.snapshot().trend
    assert t.samples == 5
    assert t.success_rate == pytest.approx(0.8)
    assert t.latency_p50 == pytest.approx(0.3)
    assert t.latency_p95 == pytest.approx(0.5)
    assert t.latency_mean == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 4)


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 10)), max_size=50))
def test_trend_is_consistent_for_any_history(results: list[tuple[bool, float]]) -> None:
    t = trend([Sample(0.0, ok, latency) for ok, latency in results])
    assert t.samples == len(results)
    if not results:
        assert t.success_rate is None
        return
    assert t.success_rate is not None and 0 <= t.success_rate <= 1
    if t.latency_p50 is not None:
        assert t.latency_p95 is not None and t.latency_mean is not None
        assert t.latency_p50 <= t.latency_p95


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failures_before_unhealthy": 0},
        {"successes_before_healthy": 0},
        {"degraded_latency": -1},
        {"degraded_latency": 2.0, "unhealthy_latency": 1.0},
    ],
)
def test_invalid_thresholds_fail_at_construction(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**kwargs)  # type: ignore[arg-type]


def test_pipeline_window_degrades_on_error_ratio_with_a_minimum_count() -> None:
    w = PipelineWindow(PipelineHealth(window=10, min_calls=4, error_ratio=0.5))
    for _ in range(3):
        w.add(False, "TimeoutError")
    assert w.stats().state is None  # too few calls to judge
    w.add(True)
    stats = w.stats()
    assert (stats.calls, stats.errors, stats.state) == (4, 3, D)
    assert stats.last_error_type == "TimeoutError"
    for _ in range(6):
        w.add(True)
    stats = w.stats()
    assert stats.state is H
    assert stats.error_ratio == pytest.approx(0.3)


def test_pipeline_window_recovers_as_old_errors_leave_the_window() -> None:
    w = PipelineWindow(PipelineHealth(window=5, min_calls=5, error_ratio=0.4))
    for _ in range(5):
        w.add(False, "RateLimitError")
    assert w.stats().state is D
    states = []
    for _ in range(5):
        w.add(True)
        states.append(w.stats().state)
    assert states == [D, D, D, H, H]
    assert w.stats().last_error_type is None


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 0}, {"min_calls": 30}, {"error_ratio": 0}, {"error_ratio": 1.5}, {"max_age": 0}],
)
def test_invalid_pipeline_settings_fail(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PipelineHealth(**kwargs)  # type: ignore[arg-type]


def test_reasons_never_contain_credentials() -> None:
    dsn = "postgresql://agent:pa55w0rd-x@db.internal:5432/agent?sslpassword=k3y-9"
    error = ConnectionError(f"cannot reach {dsn}: password=pa55w0rd-x refused")
    reason = sanitize_reason(error, secrets_in(dsn))
    assert "pa55w0rd-x" not in reason
    assert "k3y-9" not in reason
    assert reason.startswith("ConnectionError: cannot reach postgresql://***@db.internal")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://user:hunter2@api.example.com/v1 failed", "hunter2"),
        ("401 with Authorization: Bearer sk-abcdef123456", "sk-abcdef123456"),
        ("url https://api.example.com/v1?api_key=AKIA1234&x=1", "AKIA1234"),
        ("redis://:r3dis-pw@cache:6379/0 unreachable", "r3dis-pw"),
        ("host=db user=x password='q w e' dbname=y", "q w e"),
        ("token: abc.def.ghi rejected", "abc.def.ghi"),
    ],
)
def test_known_secret_shapes_are_masked(text: str, secret: str) -> None:
    assert secret not in sanitize_reason(text)


def test_reasons_are_one_bounded_line_without_traceback() -> None:
    text = "boom\nTraceback (most recent call last):\n  File 'x.py', line 1\n" + "y" * 1000
    assert sanitize_reason(text) == "boom"
    long = sanitize_reason(RuntimeError("z" * 1000))
    assert len(long) == MAX_REASON_LENGTH and long.endswith("...")
    assert "\n" not in long


def test_secrets_in_finds_url_query_and_libpq_credentials() -> None:
    assert set(secrets_in("redis://u:p%40ss@h:1/0?token=tok123")) >= {"p@ss", "tok123"}
    assert secrets_in("host=h password=s3cr3t") == ("s3cr3t",)
    assert secrets_in("https://api.example.com/v1/models") == ()


def test_public_surface_is_documented() -> None:
    from pathlib import Path

    import voice_otel.health
    import voice_otel.integrations.fastapi

    docs = Path(__file__).resolve().parents[1] / "docs"
    health_doc = (docs / "health.md").read_text(encoding="utf-8")
    http_doc = (docs / "http.md").read_text(encoding="utf-8")
    for name in voice_otel.health.__all__:
        assert f"`{name}" in health_doc, name
    for name in voice_otel.integrations.fastapi.__all__:
        assert f"`{name}(" in http_doc, name
