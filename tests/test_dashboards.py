"""The dashboard generator: catalogue, lookup, and the shipped JSON equal to its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voice_otel import dashboards
from voice_otel._contract import Metrics
from voice_otel.dashboards._lint import metric_names, queries

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "grafana" / "dashboards"
EXPECTED_UIDS = [
    "voice-overview",
    "voice-ai-services",
    "voice-api",
    "voice-infrastructure",
    "voice-health",
]


def test_list_dashboards_gives_uid_title_and_description_in_order() -> None:
    listed = dashboards.list_dashboards()

    assert [d["uid"] for d in listed] == EXPECTED_UIDS
    for summary in listed:
        assert set(summary) == {"uid", "title", "description"}
        assert summary["title"] and summary["description"]


def test_get_dashboard_returns_the_model_with_that_uid() -> None:
    model = dashboards.get_dashboard("voice-overview")

    assert model["uid"] == "voice-overview"
    assert model["title"] == "Voice Agent Overview"
    assert model["panels"]


def test_get_dashboard_raises_key_error_for_an_unknown_uid() -> None:
    with pytest.raises(KeyError):
        dashboards.get_dashboard("no-such-dashboard")


def test_get_dashboard_returns_a_copy_callers_may_change() -> None:
    first = dashboards.get_dashboard("voice-api")
    first["title"] = "changed"
    first["panels"].clear()

    again = dashboards.get_dashboard("voice-api")

    assert again["title"] == "Voice API Performance"
    assert again["panels"]


@pytest.mark.parametrize("uid", EXPECTED_UIDS)
def test_shipped_json_equals_the_generator_output(uid: str) -> None:
    shipped = SHIPPED / f"{uid}.json"

    assert shipped.is_file(), f"{shipped} missing: run `voice-otel dashboards export`"
    assert shipped.read_text(encoding="utf-8") == dashboards.dashboard_json(uid), (
        f"{shipped} differs from the generator: run `voice-otel dashboards export`"
    )


def test_no_stray_dashboard_files_are_shipped() -> None:
    assert sorted(p.stem for p in SHIPPED.glob("*.json")) == sorted(EXPECTED_UIDS)


def test_json_is_normalised_with_sorted_keys_and_two_space_indent() -> None:
    text = dashboards.dashboard_json("voice-health")
    data = json.loads(text)

    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_generation_is_deterministic() -> None:
    assert dashboards.get_dashboard("voice-overview") == dashboards.get_dashboard("voice-overview")


def test_write_dashboards_writes_one_file_per_uid(tmp_path: Path) -> None:
    written = dashboards.write_dashboards(tmp_path / "out")

    assert [p.name for p in written] == [f"{uid}.json" for uid in EXPECTED_UIDS]
    assert json.loads(written[0].read_text())["uid"] == EXPECTED_UIDS[0]


def test_dashboards_cover_the_core_voice_metrics() -> None:
    used: set[str] = set()
    for uid in EXPECTED_UIDS:
        for _panel, target in queries(dashboards.get_dashboard(uid)):
            used |= metric_names(target["expr"])

    core = [
        Metrics.TURN_LATENCY,
        Metrics.TURN_LATENCY_COMPONENT,
        Metrics.TURNS,
        Metrics.INTERRUPTIONS,
        Metrics.STAGE_DURATION,
        Metrics.STAGE_TTFO,
        Metrics.GENAI_DURATION,
        Metrics.GENAI_TTFC,
        Metrics.GENAI_TOKENS,
        Metrics.COST,
        Metrics.CHARACTERS,
        Metrics.AUDIO_DURATION,
        Metrics.HEALTH_STATUS,
        Metrics.HEALTH_CHECK_DURATION,
    ]
    missing = [m.name for m in core if not any(n.startswith(m.prometheus_name) for n in used)]
    assert not missing, f"no panel reads {missing}"


def test_latency_panels_ask_for_exemplars() -> None:
    overview = dashboards.get_dashboard("voice-overview")
    latency = next(p for p in overview["panels"] if p["title"] == "Voice-to-voice latency")

    quantile_targets = [t for t in latency["targets"] if "histogram_quantile" in t["expr"]]
    assert quantile_targets
    assert all(t.get("exemplar") is True for t in quantile_targets)
