"""collector/alertmanager.yml: amtool checks, routing cases, and a real Alertmanager.

The real Alertmanager runs the shipped file with only its webhook URLs, token file and timers
swapped for the test's own (a webhook server on loopback, a token in a temporary file, 1s
timers). It checks inhibition, silences (acknowledgement), webhook delivery of firing and
resolved notifications, and the client and CLI of ``voice_otel._alertmanager``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from voice_otel._alertmanager import (
    AlertmanagerClient,
    AlertmanagerError,
    AlertmanagerUnavailable,
    lifecycle_state,
    summarize,
)
from voice_otel.alerts import alert_names, rule_groups
from voice_otel.cli import main
from voice_otel.stack import AlertmanagerProcess, BinaryNotFound, find, free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "collector" / "alertmanager.yml"
ROUTE_CASES = ROOT / "collector" / "alertmanager-routes.txt"
TOKEN = "test-token-7d1f"


def _require(program: str) -> str:
    try:
        return str(find(program))
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        pytest.skip(str(exc))


def _route_cases() -> list[tuple[str, list[str]]]:
    cases = []
    for line in ROUTE_CASES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            receivers, *labels = line.split()
            cases.append((receivers, labels))
    return cases


# -- the file, offline ------------------------------------------------------------------------


def test_amtool_accepts_the_shipped_config() -> None:
    result = subprocess.run(
        [_require("amtool"), "check-config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("receivers", "labels"), _route_cases())
def test_alerts_route_to_the_expected_receivers(receivers: str, labels: list[str]) -> None:
    result = subprocess.run(
        [
            _require("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={receivers}",
            *labels,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, f"{labels} routed to {result.stdout.strip()}, not {receivers}"


def test_every_alert_and_severity_has_a_routing_case() -> None:
    cased = set()
    for _, labels in _route_cases():
        pairs = dict(label.split("=", 1) for label in labels)
        cased.add((pairs.get("alertname"), pairs.get("severity")))

    rules = {(rule.name, rule.severity) for group in rule_groups() for rule in group.alerts}
    assert rules - cased == set()


def test_every_receiver_sends_resolved_and_reads_its_token_from_a_file() -> None:
    config = yaml.safe_load(CONFIG.read_text())

    assert config["receivers"]
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            assert webhook["send_resolved"] is True
            auth = webhook["http_config"]["authorization"]
            assert auth["credentials_file"].startswith("/")
            assert "credentials" not in auth


def test_grouping_and_inhibition_name_labels_and_alerts_the_rules_have() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    names = set(alert_names())

    assert config["route"]["group_by"] == ["alertname", "component", "stage"]
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            match = re.match(r'alertname=~?"([^"]+)"', matcher)
            if match:
                assert set(match.group(1).split("|")) <= names, matcher
        assert set(rule["equal"]) <= {"alertname", "job", "component", "stage"}


async def test_client_reports_an_unreachable_alertmanager() -> None:
    client = AlertmanagerClient(f"http://127.0.0.1:{free_port()}", timeout=1.0)

    with pytest.raises(AlertmanagerUnavailable):
        await client.alerts()
    with pytest.raises(ValueError, match="http"):
        AlertmanagerClient("127.0.0.1:9093")


class StandIn:
    """A loopback HTTP server that gives every request the same answer, like a wrong URL would."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body = b"[]"
        self.delay = 0.0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(stand_in.delay)
                self.send_response(stand_in.status)
                self.send_header("Content-Type", stand_in.content_type)
                self.send_header("Content-Length", str(len(stand_in.body)))
                self.end_headers()
                self.wfile.write(stand_in.body)

            do_GET = do_POST = do_DELETE = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answers(self, body: Any, content_type: str = "application/json") -> None:
        self.content_type = content_type
        self.body = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    try:
        yield server
    finally:
        server.close()


HTML_404 = """<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: 404</p>
        <p>Message: File not found.</p>
    </body>
</html>
"""

_ACK = ["ack", "VoiceHostCpuHigh", "-c", "resizing"]


def _one_line_error(result: Any) -> str:
    """The CLI's error, checked to be a single ``Error:`` line with no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert line.startswith("Error: "), line
    return str(line)


@pytest.mark.parametrize(
    ("command", "body", "content_type", "reason"),
    [
        (["list"], [1], "application/json", "answered [1], not a list of alerts"),
        (["list"], {"data": []}, "application/json", '{"data": []}, not a list of alerts'),
        (["list"], [{"name": "x"}], "application/json", "not a list of alerts"),
        (["list"], "<html><body>Hi</body></html>", "text/html", "200 with text/html, not JSON"),
        (["list"], "", "text/plain", "answered an empty body, not a list of alerts"),
        (_ACK, {"ok": True}, "application/json", 'answered {"ok": true} without a silenceID'),
        (_ACK, [], "application/json", "without a silenceID"),
        (_ACK, "<!DOCTYPE html><p>hello</p>", "text/html", "text/html, not JSON"),
    ],
)
def test_cli_says_when_the_url_is_not_alertmanager(
    stand_in: StandIn, command: list[str], body: Any, content_type: str, reason: str
) -> None:
    stand_in.answers(body, content_type)

    result = CliRunner().invoke(main, ["alerts", "--alertmanager-url", stand_in.url, *command])

    line = _one_line_error(result)
    assert f"Error: {stand_in.url} does not look like Alertmanager: " in line
    assert reason in line


def test_cli_shortens_an_html_error_page_to_one_line(stand_in: StandIn) -> None:
    stand_in.status = 404
    stand_in.answers(HTML_404, "text/html")

    result = CliRunner().invoke(main, ["alerts", "--alertmanager-url", stand_in.url, "list"])

    line = _one_line_error(result)
    assert "GET /api/v2/alerts" in line and "HTTP 404" in line
    assert "Message: File not found." in line
    assert "<" not in line and len(line) < 250


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_cli_refuses_a_timeout_that_is_not_positive(timeout: str) -> None:
    result = CliRunner().invoke(main, ["alerts", "--timeout", timeout, "list"])

    assert result.exit_code == 2
    assert "--timeout" in result.output


def test_cli_reports_an_unreachable_alertmanager_in_words() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = CliRunner().invoke(main, ["alerts", "--alertmanager-url", url, "list"])

    line = _one_line_error(result)
    assert line == f"Error: cannot reach Alertmanager at {url}: all connection attempts failed"


def test_cli_reports_an_alertmanager_that_does_not_answer_in_time(stand_in: StandIn) -> None:
    stand_in.delay = 1.0

    result = CliRunner().invoke(
        main, ["alerts", "--alertmanager-url", stand_in.url, "--timeout", "0.2", "list"]
    )

    line = _one_line_error(result)
    assert line == f"Error: Alertmanager at {stand_in.url} did not answer within 0.2s"


def test_cli_table_counts_one_alert_in_the_singular(stand_in: StandIn) -> None:
    alert = {
        "labels": {"alertname": "VoiceHostCpuHigh", "severity": "warning"},
        "annotations": {"summary": "CPU busy"},
        "startsAt": "2025-01-01T00:00:00Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }
    stand_in.answers([alert])

    result = CliRunner().invoke(main, ["alerts", "--alertmanager-url", stand_in.url, "list"])

    assert result.exit_code == 0, result.output
    assert "1 alert (1 active)" in result.output


def _firing(**labels: str) -> dict[str, Any]:
    return {
        "labels": labels,
        "annotations": {"summary": "Collector down"},
        "startsAt": "2025-01-01T00:00:00Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }


@pytest.mark.parametrize("command", [["list"], ["ack", "VoiceHostCpuHigh", "-c", "resizing"]])
def test_cli_takes_the_alertmanager_url_after_the_subcommand_and_prefers_it(
    stand_in: StandIn, command: list[str]
) -> None:
    stand_in.answers([] if command == ["list"] else {"silenceID": "s-1"})
    elsewhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"VOICE_OTEL_ALERTMANAGER_URL": elsewhere}
    runner = CliRunner()

    after = runner.invoke(main, ["alerts", *command, "--alertmanager-url", stand_in.url], env=env)
    both = runner.invoke(
        main,
        ["alerts", "--alertmanager-url", elsewhere, *command, "--alertmanager-url", stand_in.url],
    )
    before = runner.invoke(main, ["alerts", *command], env=env)

    assert after.exit_code == 0, after.output
    assert both.exit_code == 0, both.output
    assert f"cannot reach Alertmanager at {elsewhere}" in _one_line_error(before)


def test_cli_takes_the_timeout_after_the_subcommand_and_prefers_it(stand_in: StandIn) -> None:
    stand_in.delay = 1.0
    args = ["alerts", "--alertmanager-url", stand_in.url, "--timeout", "30", "list"]

    result = CliRunner().invoke(main, [*args, "--timeout", "0.2"])

    line = _one_line_error(result)
    assert line == f"Error: Alertmanager at {stand_in.url} did not answer within 0.2s"
    bad = CliRunner().invoke(main, ["alerts", "list", "--timeout", "0"])
    assert bad.exit_code == 2 and "--timeout" in bad.output


def test_cli_table_tells_alerts_of_the_same_name_apart_by_their_differing_labels(
    stand_in: StandIn,
) -> None:
    # The collector is scraped by two jobs, so one outage fires two VoiceCollectorDown.
    common = {"alertname": "VoiceCollectorDown", "severity": "critical",
              "component": "otel-collector", "service_name": "agent"}  # fmt: skip
    stand_in.answers(
        [
            _firing(**common, job="otelcol", instance="127.0.0.1:8888"),
            _firing(**common, job="voice-otel-collector", instance="127.0.0.1:8889"),
            _firing(alertname="VoiceHostCpuHigh", severity="warning", job="node", instance="h"),
        ]
    )

    result = CliRunner().invoke(main, ["alerts", "list", "--alertmanager-url", stand_in.url])

    assert result.exit_code == 0, result.output
    assert "labels" in result.output.splitlines()[2]  # the header row
    rows = [line for line in result.output.splitlines() if "Voice" in line]
    assert len(rows) == 3
    assert "instance=127.0.0.1:8888 job=otelcol" in rows[0]
    assert "instance=127.0.0.1:8889 job=voice-otel-collector" in rows[1]
    assert "service_name" not in result.output  # the same on both: tells nothing apart
    assert "job=node" not in rows[2]  # the only one of its name


def test_cli_table_has_no_labels_column_when_every_alert_name_is_unique(
    stand_in: StandIn,
) -> None:
    stand_in.answers([_firing(alertname="VoiceCollectorDown", severity="critical", job="otelcol")])

    result = CliRunner().invoke(main, ["alerts", "list", "--alertmanager-url", stand_in.url])

    assert result.exit_code == 0, result.output
    assert "labels" not in result.output and "job=" not in result.output


def test_cli_json_help_says_what_it_prints() -> None:
    result = CliRunner().invoke(main, ["alerts", "list", "--help"])

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Alertmanager's JSON instead" not in text
    assert '{"summary": counts by state and severity, "alerts":' in text


def test_summarize_counts_lifecycle_states_and_severities() -> None:
    alerts = [
        {"labels": {"severity": "critical"}, "status": {"state": "active"}},
        {"labels": {"severity": "warning"}, "status": {"state": "suppressed", "silencedBy": ["s"]}},
        {
            "labels": {"severity": "warning"},
            "status": {"state": "suppressed", "inhibitedBy": ["f"]},
        },
        {"labels": {}, "status": {"state": "unprocessed"}},
    ]

    assert summarize(alerts) == {
        "total": 4,
        "by_state": {"active": 1, "acknowledged": 1, "suppressed": 1, "unprocessed": 1},
        "by_severity": {"critical": 1, "warning": 2, "none": 1},
    }


# -- a real Alertmanager ----------------------------------------------------------------------


class Webhook:
    """A webhook receiver on loopback that keeps every notification it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook._lock:
                    webhook.received.append(
                        {
                            "path": self.path,
                            "authorization": self.headers.get("Authorization"),
                            "body": json.loads(body),
                        }
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def notifications(self, alertname: str) -> list[dict[str, Any]]:
        """Every (receiver path, status, alert, authorization) carrying this alert."""
        with self._lock:
            received = list(self.received)
        return [
            {"path": r["path"], "auth": r["authorization"], "status": a["status"], "alert": a}
            for r in received
            for a in r["body"]["alerts"]
            if a["labels"].get("alertname") == alertname
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _test_config(webhook_url: str, token_file: Path, repeat: str = "1h") -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook_url}/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)

    def fast(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route or route is config["route"]:
                route[key] = value
        if "repeat_interval" in route:
            route["repeat_interval"] = repeat
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    return config


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Webhook]]:
    _require("alertmanager")
    workdir = tmp_path_factory.mktemp("alertmanager")
    token_file = workdir / "webhook-token"
    token_file.write_text(TOKEN)
    webhook = Webhook()
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump(_test_config(webhook.url, token_file), sort_keys=False))
    process = AlertmanagerProcess(workdir, config=config)
    process.start()
    try:
        yield process.url, webhook
    finally:
        process.stop()
        webhook.close()


def _post(url: str, *alerts: dict[str, str], resolved: bool = False) -> None:
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)
    payload = [
        {
            "labels": labels,
            "annotations": {"summary": "test"},
            "startsAt": (now - timedelta(minutes=1)).isoformat(),
            "endsAt": ends.isoformat(),
        }
        for labels in alerts
    ]
    httpx.post(f"{url}/api/v2/alerts", json=payload, timeout=5.0).raise_for_status()


async def _eventually(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Await ``probe()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.25)
    pytest.fail(f"condition not met in {timeout}s; last value {last!r}")


def _states(alerts: list[dict[str, Any]], job: str) -> dict[tuple[str, str, str], str]:
    return {
        (a["labels"]["alertname"], a["labels"].get("component", ""), a["labels"]["severity"]): (
            lifecycle_state(a)
        )
        for a in alerts
        if a["labels"].get("job") == job
    }


@pytest.mark.integration
async def test_a_critical_alert_mutes_the_warning_of_the_same_alert(
    alertmanager: tuple[str, Webhook],
) -> None:
    url, _ = alertmanager
    client = AlertmanagerClient(url)
    base = {"alertname": "VoiceStageErrorRatioHigh", "job": "inhibit-severity", "stage": "stt"}
    _post(
        url,
        {**base, "component": "deepgram", "severity": "critical"},
        {**base, "component": "deepgram", "severity": "warning"},
        {**base, "component": "whisper", "severity": "warning"},
    )

    async def settled() -> dict[tuple[str, str, str], str] | None:
        states = _states(await client.alerts(), "inhibit-severity")
        return states if len(states) == 3 and "unprocessed" not in states.values() else None

    states = await _eventually(settled)
    assert states == {
        ("VoiceStageErrorRatioHigh", "deepgram", "critical"): "active",
        ("VoiceStageErrorRatioHigh", "deepgram", "warning"): "suppressed",
        ("VoiceStageErrorRatioHigh", "whisper", "warning"): "active",
    }


@pytest.mark.integration
async def test_an_unhealthy_provider_mutes_its_own_stage_alerts_only(
    alertmanager: tuple[str, Webhook],
) -> None:
    url, _ = alertmanager
    client = AlertmanagerClient(url)
    job = {"job": "inhibit-provider"}
    _post(
        url,
        {**job, "alertname": "VoiceComponentUnhealthy", "severity": "critical",
         "component": "cartesia", "stage": "tts", "voice_component": "tts:cartesia"},
        {**job, "alertname": "VoiceTTSTimeToFirstByteHigh", "severity": "warning",
         "component": "cartesia", "stage": "tts"},
        {**job, "alertname": "VoiceTTSTimeToFirstByteHigh", "severity": "warning",
         "component": "elevenlabs", "stage": "tts"},
        {**job, "alertname": "VoiceLatencyBudgetBurn", "severity": "critical",
         "component": "voice-pipeline"},
    )  # fmt: skip

    async def settled() -> dict[tuple[str, str, str], str] | None:
        states = _states(await client.alerts(), "inhibit-provider")
        return states if len(states) == 4 and "unprocessed" not in states.values() else None

    states = await _eventually(settled)
    assert states == {
        ("VoiceComponentUnhealthy", "cartesia", "critical"): "active",
        ("VoiceTTSTimeToFirstByteHigh", "cartesia", "warning"): "suppressed",
        ("VoiceTTSTimeToFirstByteHigh", "elevenlabs", "warning"): "active",
        ("VoiceLatencyBudgetBurn", "voice-pipeline", "critical"): "active",
    }


@pytest.mark.integration
async def test_a_silence_acknowledges_and_expiring_it_reactivates(
    alertmanager: tuple[str, Webhook],
) -> None:
    url, _ = alertmanager
    client = AlertmanagerClient(url)
    labels = {"alertname": "VoiceCostOverBudget", "severity": "warning", "job": "ack"}
    _post(url, {**labels, "component": "voice-pipeline"})

    async def state() -> str | None:
        found = [a for a in await client.alerts() if a["labels"].get("job") == "ack"]
        return lifecycle_state(found[0]) if found else None

    assert await _eventually(lambda: _is(state, "active")) == "active"
    silence_id = await client.silence(
        {"alertname": "VoiceCostOverBudget", "job": "ack"}, "budget raised", "oncall", 600
    )
    assert await _eventually(lambda: _is(state, "acknowledged")) == "acknowledged"
    silences = {s["id"]: s for s in await client.silences()}
    assert silences[silence_id]["comment"] == "budget raised"
    assert silences[silence_id]["createdBy"] == "oncall"
    assert await client.alerts(silenced=False) == [
        a for a in await client.alerts() if lifecycle_state(a) != "acknowledged"
    ]

    await client.expire_silence(silence_id)

    assert await _eventually(lambda: _is(state, "active")) == "active"
    with pytest.raises(AlertmanagerError):
        await client.expire_silence("not-a-silence-id")
    with pytest.raises(ValueError, match="comment"):
        await client.silence({"alertname": "x"}, " ", "oncall", 60)


async def _is(probe: Callable[[], Any], expected: str) -> str | None:
    value = await probe()
    return value if value == expected else None


@pytest.mark.integration
def test_cli_lists_and_acknowledges_alerts(alertmanager: tuple[str, Webhook]) -> None:
    url, _ = alertmanager
    runner = CliRunner()
    labels = {"alertname": "VoiceHostCpuHigh", "severity": "warning", "job": "cli"}
    _post(url, {**labels, "component": "host", "instance": "cli-a"})
    _post(url, {**labels, "component": "host", "instance": "cli-b"})

    acked = runner.invoke(
        main,
        ["alerts", "--alertmanager-url", url, "ack", "VoiceHostCpuHigh", "-m", "instance=cli-a",
         "--comment", "resizing the host", "--duration", "30m", "--author", "oncall"],
    )  # fmt: skip
    assert acked.exit_code == 0, acked.output
    assert re.fullmatch(r"[0-9a-f-]{36}\n", acked.stdout)
    assert "silenced alertname=VoiceHostCpuHigh, instance=cli-a for 30m" in acked.stderr
    assert "not one of the voice-otel alert rules" not in acked.stderr
    unknown = runner.invoke(
        main, ["alerts", "--alertmanager-url", url, "ack", "NoSuchAlert", "-c", "maintenance"]
    )
    assert unknown.exit_code == 0, unknown.output
    assert "NoSuchAlert is not one of the voice-otel alert rules" in unknown.stderr

    def listed() -> dict[str, str]:
        out = runner.invoke(main, ["alerts", "--alertmanager-url", url, "list", "--json"])
        assert out.exit_code == 0, out.output
        alerts = json.loads(out.output)["alerts"]
        return {
            a["labels"]["instance"]: lifecycle_state(a)
            for a in alerts
            if a["labels"].get("job") == "cli"
        }

    deadline = time.monotonic() + 30
    while listed() != {"cli-a": "acknowledged", "cli-b": "active"}:
        assert time.monotonic() < deadline, listed()
        time.sleep(0.25)
    table = runner.invoke(main, ["alerts", "--alertmanager-url", url, "list"])
    assert table.exit_code == 0
    assert "VoiceHostCpuHigh" in table.output and "acknowledged" in table.output
    bad = runner.invoke(main, ["alerts", "--alertmanager-url", url, "ack", "X", "-c", "y",
                               "--duration", "soon"])  # fmt: skip
    assert bad.exit_code == 2 and "duration" in bad.output
    down = runner.invoke(main, ["alerts", "--alertmanager-url", f"http://127.0.0.1:{free_port()}",
                                "list"])  # fmt: skip
    assert down.exit_code == 1 and "Alertmanager" in down.output


@pytest.mark.integration
async def test_webhooks_get_firing_then_resolved_with_the_bearer_token(
    alertmanager: tuple[str, Webhook],
) -> None:
    url, webhook = alertmanager
    page = {"alertname": "VoiceCollectorDown", "severity": "critical", "job": "otelcol",
            "component": "otel-collector", "instance": "webhook-test"}  # fmt: skip
    ticket = {"alertname": "VoiceCostOverBudget", "severity": "warning", "job": "webhook-test",
              "component": "voice-pipeline"}  # fmt: skip
    _post(url, page, ticket)

    async def statuses(name: str) -> set[tuple[str, str]]:
        return {(n["path"], n["status"]) for n in webhook.notifications(name)}

    await _eventually(lambda: _has(statuses("VoiceCollectorDown"), ("/platform-pager", "firing")))
    await _eventually(lambda: _has(statuses("VoiceCostOverBudget"), ("/voice-tickets", "firing")))
    _post(url, page, resolved=True)
    await _eventually(lambda: _has(statuses("VoiceCollectorDown"), ("/platform-pager", "resolved")))

    assert {n["auth"] for n in webhook.notifications("VoiceCollectorDown")} == {f"Bearer {TOKEN}"}


async def _has(probe: Any, item: tuple[str, str]) -> bool:
    return item in await probe
