"""The alert and recording rules: generator, shipped files, promtool, coverage, runbooks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from voice_otel._contract import Attr, GenAI, Metrics
from voice_otel.alerts import (
    AlertConfig,
    AlertRule,
    RecordingRule,
    alert_names,
    render_rule_files,
    rule_groups,
    write_rule_files,
)
from voice_otel.alerts._promql import duration, le_matcher, number, parse_duration
from voice_otel.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "collector" / "rules"
RULE_TESTS = RULES / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks"

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/install-system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("promtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _series(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("{")
    return name.strip(), dict(_LABEL.findall(rest))


# -- the shipped files ------------------------------------------------------------------------


def test_shipped_rule_files_are_exactly_what_the_generator_renders() -> None:
    rendered = render_rule_files()
    shipped = {p.name: p.read_text(encoding="utf-8") for p in RULES.glob("*.yml")}

    assert sorted(shipped) == sorted(rendered)
    for name, text in rendered.items():
        assert shipped[name] == text, f"{name} is stale: run `voice-otel rules render`"


def test_promtool_check_rules_accepts_the_shipped_files() -> None:
    result = _promtool("check", "rules", *sorted(RULES.glob("*.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_promtool_unit_tests_pass() -> None:
    files = sorted(RULE_TESTS.glob("*.yml"))
    assert {f.name.removesuffix(".test.yml") for f in files} == {
        p.stem for p in RULES.glob("*.yml")
    }, "every rule file has a promtool test file"

    result = _promtool("test", "rules", *files)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_accepts_rules_rendered_with_other_settings(tmp_path: Path) -> None:
    config = AlertConfig.from_settings(
        {
            "latency_objective_s": "0.5",
            "latency_target": "0.99",
            "stage_window_s": "30s",
            "for_scale": "0.05",
            "collector_job": "collector",
        }
    )
    write_rule_files(tmp_path, config)

    result = _promtool("check", "rules", *sorted(tmp_path.glob("*.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    slo = (tmp_path / "voice-slo.yml").read_text()
    assert 'voice_turn_latency_seconds_bucket{le="0.5"}' in slo
    assert "(14.4 * 0.01)" in slo
    assert "for: 6s" in slo  # 2m * 0.05
    header = " ".join(line for line in slo.splitlines() if line.startswith("#"))
    assert "latency_objective_s=0.5" in header
    assert "rate30s" in (tmp_path / "voice-stages.yml").read_text()


def test_promtool_accepts_a_collector_job_with_quotes_and_backslashes(tmp_path: Path) -> None:
    config = AlertConfig.from_settings({"collector_job": r'otelcol|a"b|c\.d'})
    write_rule_files(tmp_path, config)

    result = _promtool("check", "rules", *sorted(tmp_path.glob("*.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    pipeline = (tmp_path / "telemetry-pipeline.yml").read_text()
    assert r'up{job=~"otelcol|a\"b|c\\.d"} == 0' in pipeline


# -- coverage of the promtool tests -----------------------------------------------------------


def _rule_tests() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, yaml.safe_load(p.read_text())) for p in sorted(RULE_TESTS.glob("*.yml"))]


def _boundaries_covered() -> dict[tuple[str, str], list[str]]:
    """(alert, severity) -> where it is seen pending at T and firing at T + one evaluation."""
    covered: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, doc in _rule_tests():
        interval = parse_duration(doc.get("evaluation_interval", "1m"))
        for index, group in enumerate(doc["tests"]):
            firing: dict[tuple[str, int], set[str]] = {}
            for case in group.get("alert_rule_test", []):
                severities = {a["exp_labels"]["severity"] for a in case.get("exp_alerts") or []}
                firing[(case["alertname"], parse_duration(case["eval_time"]))] = severities
            for case in group.get("promql_expr_test", []):
                if not case["expr"].startswith("ALERTS{"):
                    continue
                at = parse_duration(case["eval_time"])
                for sample in case.get("exp_samples") or []:
                    _, labels = _series(sample["labels"])
                    if labels.get("alertstate") != "pending":
                        continue
                    key = (labels["alertname"], labels["severity"])
                    before = firing.get((key[0], at))
                    after = firing.get((key[0], at + interval))
                    if before is None or after is None:
                        continue
                    if key[1] not in before and key[1] in after:
                        covered[key].append(f"{path.name} test {index} at {case['eval_time']}")
    return covered


def test_every_alert_is_tested_just_before_and_just_after_its_for() -> None:
    covered = _boundaries_covered()

    missing = [
        (rule.name, rule.severity)
        for group in rule_groups()
        for rule in group.alerts
        if (rule.name, rule.severity) not in covered
    ]
    assert not missing, f"no pending-then-firing promtool case for {missing}"


def test_each_rule_file_test_loads_the_rules_it_covers() -> None:
    for path, doc in _rule_tests():
        assert doc["rule_files"] == [f"../{path.name.removesuffix('.test.yml')}.yml"]


def test_every_recording_rule_is_checked_by_a_promql_test() -> None:
    checked: set[str] = set()
    for _, doc in _rule_tests():
        for group in doc["tests"]:
            for case in group.get("promql_expr_test", []):
                if case.get("exp_samples"):
                    checked.update(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", case["expr"]))

    records = {r.record for group in rule_groups() for r in group.recordings}
    assert records - checked == set()


# -- every alert's fields, runbook and docs ---------------------------------------------------


def _shipped_alerts() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(path.name, rule) for rule in group["rules"] if "alert" in rule]
    return found


def test_every_alert_has_expr_for_severity_summary_description_and_runbook() -> None:
    alerts = _shipped_alerts()
    assert {rule["alert"] for _, rule in alerts} == set(alert_names())

    for _, rule in alerts:
        name = rule["alert"]
        assert rule["expr"].endswith("\n"), f"{name}: expr must be a block string"
        assert parse_duration(rule["for"]) > 0
        assert rule["labels"]["severity"] in ("critical", "warning")
        annotations = rule["annotations"]
        assert "{{" not in annotations["summary"], f"{name}: summary must be static"
        assert "$value" in annotations["description"]
        assert "$labels." in annotations["description"] or name == "VoiceCollectorAbsent"
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
        assert (ROOT / annotations["runbook_url"]).is_file(), f"{name} has no runbook"
    for path in RULES.glob("*.yml"):
        text = path.read_text()
        assert text.count("expr: |") == text.count("expr:"), f"{path.name}: block strings"


def test_every_runbook_says_what_to_check_and_what_to_do() -> None:
    files = {
        name: next(f for f, r in _shipped_alerts() if r["alert"] == name) for name in alert_names()
    }

    assert {p.stem for p in RUNBOOKS.glob("*.md")} == set(files), "one runbook per alert"
    for name, rule_file in files.items():
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n")
        for heading in ("## Meaning", "## Impact", "## Check", "## Act"):
            assert heading in text, f"{name}.md lacks {heading}"
        assert f"collector/rules/{rule_file}" in text
        assert f"voice-otel alerts ack {name}" in text


def test_alerts_doc_lists_every_alert_with_its_runbook() -> None:
    doc = (ROOT / "docs" / "alerts.md").read_text()

    for name in alert_names():
        assert f"[{name}](runbooks/{name}.md)" in doc


def test_runbook_base_url_is_configurable() -> None:
    config = AlertConfig(runbook_base_url="https://example.org/repo/blob/main/docs/runbooks")
    text = render_rule_files(config)["voice-health.yml"]

    url = "https://example.org/repo/blob/main/docs/runbooks/VoiceComponentUnhealthy.md"
    assert f"runbook_url: {url}" in text


# -- the rules read only names of the telemetry contract --------------------------------------


def test_rules_use_only_metric_and_label_names_of_the_contract() -> None:
    allowed = {
        f"{m.prometheus_name}{suffix}"
        for m in Metrics.all()
        for suffix in ("", "_bucket", "_count", "_sum")
    }
    allowed |= {
        re.sub(r"\W", "_", value)
        for cls in (Attr, GenAI)
        for value in vars(cls).values()
        if isinstance(value, str) and "." in value
    }

    for group in rule_groups():
        for rule in group.rules:
            for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule.expr):
                if ":" not in token and token.startswith(("voice_", "gen_ai_")):
                    assert token in allowed, f"{token!r} in {group.file} is not in the contract"


def test_recording_rules_precede_the_alerts_that_read_them() -> None:
    for group in rule_groups():
        recorded: set[str] = set()
        for rule in group.rules:
            if isinstance(rule, RecordingRule):
                recorded.add(rule.record)
                continue
            used = set(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule.expr))
            assert used <= recorded, f"{rule.name} reads {used - recorded} before it is recorded"


# -- settings ---------------------------------------------------------------------------------


def test_objective_must_be_a_bucket_boundary() -> None:
    with pytest.raises(ValueError, match="bucket boundary"):
        AlertConfig(latency_objective_s=0.55)


def test_target_must_leave_a_budget_a_fast_burn_can_exceed() -> None:
    with pytest.raises(ValueError, match=r"14\.4x"):
        AlertConfig(latency_target=0.9)
    with pytest.raises(ValueError):
        AlertConfig(latency_target=1.0)


def test_critical_error_ratio_must_exceed_the_warning_one() -> None:
    with pytest.raises(ValueError, match="critical"):
        AlertConfig(stage_error_ratio_warning=0.3, stage_error_ratio_critical=0.2)


def test_settings_parse_numbers_durations_and_text() -> None:
    config = AlertConfig.from_settings(
        {
            "stage_window_s": "2m",
            "slo_min_turns": "50",
            "llm_ttft_p95_s": "1.2",
            "collector_job": "x",
        }
    )

    assert (config.stage_window_s, config.slo_min_turns) == (120, 50)
    assert (config.llm_ttft_p95_s, config.collector_job) == (1.2, "x")
    assert config.changed() == {
        "stage_window_s": 120,
        "slo_min_turns": 50,
        "llm_ttft_p95_s": 1.2,
        "collector_job": "x",
    }
    with pytest.raises(ValueError, match="unknown setting"):
        AlertConfig.from_settings({"latency_objective": "1"})


@pytest.mark.parametrize("name", ["slo_min_turns", "stage_min_calls", "interruption_min_turns"])
@pytest.mark.parametrize("text", ["1m", "abc", "2.5", ""])
def test_count_settings_are_whole_numbers_not_durations(name: str, text: str) -> None:
    assert getattr(AlertConfig.from_settings({name: "60"}), name) == 60
    with pytest.raises(ValueError, match=rf"^{name}={text!r}: expected a whole number"):
        AlertConfig.from_settings({name: text})


def test_window_settings_take_seconds_or_a_duration() -> None:
    assert AlertConfig.from_settings({"stage_window_s": "90"}).stage_window_s == 90
    assert AlertConfig.from_settings({"stage_window_s": "1m30s"}).stage_window_s == 90
    with pytest.raises(ValueError, match=r"^stage_window_s='2\.5': expected whole seconds or"):
        AlertConfig.from_settings({"stage_window_s": "2.5"})
    with pytest.raises(ValueError, match="stage_window_s must be at most"):
        AlertConfig.from_settings({"stage_window_s": "99999d"})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("for_scale", "nan"),
        ("for_scale", "inf"),
        ("for_scale", "1e308"),
        ("cost_budget_usd_per_hour", "inf"),
        ("cost_budget_usd_per_hour", "-inf"),
        ("llm_ttft_p95_s", "NaN"),
        ("latency_target", "nan"),
        ("host_cpu_ratio", "nan"),
        ("tts_ttfb_p95_s", "fast"),
    ],
)
def test_number_settings_must_be_finite(name: str, text: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        AlertConfig.from_settings({name: text})


def test_a_config_refuses_non_finite_numbers_and_fractional_counts() -> None:
    with pytest.raises(ValueError, match="for_scale"):
        AlertConfig(for_scale=float("nan"))
    with pytest.raises(ValueError, match="cost_budget_usd_per_hour"):
        AlertConfig(cost_budget_usd_per_hour=float("inf"))
    with pytest.raises(ValueError, match="stage_min_calls must be a whole number"):
        AlertConfig(stage_min_calls=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(", "not a valid regular expression"),
        ("a[", "not a valid regular expression"),
        ("(?=otelcol)", "Prometheus"),
        (r"(a)\1", "Prometheus"),
        ("", "scrape job"),
        ("a\nb", "control character"),
        ("{{ x }}", "{{"),
    ],
)
def test_collector_job_must_be_a_regex_prometheus_accepts(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        AlertConfig(collector_job=text)

    assert str(caught.value).startswith("collector_job")
    assert "\n" not in str(caught.value)


def test_collector_job_is_quoted_for_promql() -> None:
    groups = rule_groups(AlertConfig(collector_job='a"b'))
    (pipeline,) = [g for g in groups if g.name == "voice-telemetry-pipeline"]

    assert 'up{job=~"a\\"b"} == 0\n' in [a.expr for a in pipeline.alerts]


@pytest.mark.parametrize("text", ["", "docs /runbooks", "docs\n"])
def test_runbook_base_url_must_be_one_word(text: str) -> None:
    with pytest.raises(ValueError, match=r"^runbook_base_url"):
        AlertConfig(runbook_base_url=text)


def test_for_scale_shortens_every_for_but_never_below_one_second() -> None:
    config = AlertConfig(for_scale=0.001)

    fors = {rule.for_s for group in rule_groups(config) for rule in group.alerts}

    assert fors == {1}


def test_an_alert_rule_refuses_a_templated_summary() -> None:
    with pytest.raises(ValueError, match="static"):
        AlertRule("VoiceX", "up\n", 60, "warning", "{{ $labels.job }}", "{{ $value }}")


@pytest.mark.parametrize(
    ("seconds", "text"), [(1, "1s"), (90, "1m30s"), (3600, "1h"), (86400, "1d"), (0.2, "1s")]
)
def test_durations_format_the_prometheus_way(seconds: float, text: str) -> None:
    assert duration(seconds) == text
    assert parse_duration(text) == max(1, round(seconds))


@given(st.integers(min_value=1, max_value=10**7))
def test_any_whole_number_of_seconds_survives_formatting_and_parsing(seconds: int) -> None:
    assert parse_duration(duration(seconds)) == seconds


def test_bucket_matcher_accepts_both_exporters_spellings() -> None:
    assert le_matcher(1.0) == 'le=~"1|1.0"'
    assert le_matcher(0.5) == 'le="0.5"'
    assert number(0.1 + 0.2) == "0.3"
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


# -- CLI --------------------------------------------------------------------------------------


def test_cli_renders_and_checks_rule_files(tmp_path: Path) -> None:
    runner = CliRunner()

    written = runner.invoke(main, ["rules", "render", "--out", str(tmp_path), "--objective", "1.5"])
    fresh = runner.invoke(
        main, ["rules", "render", "--out", str(tmp_path), "--objective", "1.5", "--check"]
    )
    stale = runner.invoke(main, ["rules", "render", "--out", str(tmp_path), "--check"])
    bad = runner.invoke(main, ["rules", "render", "--out", str(tmp_path), "--set", "nope=1"])

    assert written.exit_code == 0, written.output
    assert 'voice_turn_latency_seconds_bucket{le="1.5"}' in (tmp_path / "voice-slo.yml").read_text()
    assert fresh.exit_code == 0, fresh.output
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert bad.exit_code == 2 and "unknown setting" in bad.output


def test_cli_check_of_a_missing_directory_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(main, ["rules", "render", "--out", str(missing), "--check"])

    assert result.exit_code == 1
    assert f"{missing} is not a directory" in result.output


def test_cli_check_passes_on_the_shipped_files() -> None:
    result = CliRunner().invoke(main, ["rules", "render", "--out", str(RULES), "--check"])

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "setting",
    [
        "stage_min_calls=1m",
        "stage_min_calls=abc",
        "slo_min_turns=2.5",
        "interruption_min_turns=1h",
        "for_scale=nan",
        "for_scale=1e308",
        "cost_budget_usd_per_hour=inf",
        'collector_job=a"b(',
        "collector_job=(",
        "stage_window_s=soon",
        "runbook_base_url=a b",
    ],
)
def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path, setting: str) -> None:
    result = CliRunner().invoke(main, ["rules", "render", "--out", str(tmp_path), "--set", setting])

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    error = result.output.splitlines()[-1]
    assert error.startswith("Error: " + setting.partition("=")[0]), result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_setting_given_twice(tmp_path: Path) -> None:
    runner = CliRunner()
    both = ["--set", "latency_objective_s=2", "--objective", "1"]

    shortcut = runner.invoke(main, ["rules", "render", "--out", str(tmp_path), *both])
    repeated = runner.invoke(
        main, ["rules", "render", "--out", str(tmp_path), "--set", "for_scale=2", "--set",
               "for_scale=3"],
    )  # fmt: skip

    assert shortcut.exit_code == 2
    assert "latency_objective_s is set twice" in shortcut.output
    assert "--objective" in shortcut.output
    assert repeated.exit_code == 2 and "for_scale is set twice" in repeated.output
    assert list(tmp_path.iterdir()) == []
