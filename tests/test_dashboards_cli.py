"""``voice-otel dashboards export|import|list``.

Grafana cannot be installed on the test machines, so ``import`` is tested against a small
stand-in HTTP server on loopback that records each request and answers the way Grafana's
``POST /api/dashboards/db`` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from voice_otel import dashboards
from voice_otel.cli import main


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StandIn:
    """A loopback server answering like Grafana's dashboard API."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    reply: bytes | None = None  # instead of Grafana's answer, as a server that is not Grafana
    content_type: str = "application/json"


@pytest.fixture
def grafana() -> Iterator[StandIn]:
    state = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if state.status != 200:
                answer: dict[str, Any] = {"message": "Access denied", "status": "error"}
            else:
                uid = body.get("dashboard", {}).get("uid", "")
                answer = {
                    "id": len(state.requests),
                    "uid": uid,
                    "url": f"/d/{uid}/x",
                    "status": "success",
                    "version": 1,
                }
            payload = json.dumps(answer).encode() if state.reply is None else state.reply
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_import_posts_every_dashboard_with_bearer_token_and_overwrite(grafana: StandIn) -> None:
    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", grafana.url, "--token", "glsa_secret"]
    )

    assert result.exit_code == 0, result.output
    uids = [d["uid"] for d in dashboards.list_dashboards()]
    assert [r.body["dashboard"]["uid"] for r in grafana.requests] == uids
    for request in grafana.requests:
        assert request.path == "/api/dashboards/db"
        assert request.headers["authorization"] == "Bearer glsa_secret"
        assert request.headers["content-type"] == "application/json"
        assert request.body["overwrite"] is True
        assert request.body["dashboard"]["id"] is None
        assert "folderUid" not in request.body
    sent = grafana.requests[0].body["dashboard"]
    expected = dashboards.get_dashboard(uids[0])
    expected["id"] = None
    assert sent == expected
    assert "glsa_secret" not in result.output


def test_import_of_one_dashboard_into_a_folder(grafana: StandIn) -> None:
    result = CliRunner().invoke(
        main,
        [
            "dashboards",
            "import",
            "--url",
            grafana.url + "/",
            "--token",
            "t",
            "--uid",
            "voice-health",
            "--folder-uid",
            "voice-ai",
        ],
    )

    assert result.exit_code == 0, result.output
    (request,) = grafana.requests
    assert request.body["dashboard"]["uid"] == "voice-health"
    assert request.body["folderUid"] == "voice-ai"
    assert "voice-health: success" in result.output


def test_import_reports_grafana_refusing(grafana: StandIn) -> None:
    grafana.status = 403

    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", grafana.url, "--token", "wrong"]
    )

    assert result.exit_code == 1
    assert "HTTP 403" in result.output
    assert len(grafana.requests) == 1  # stops at the first refusal


def test_import_rejects_an_unknown_uid_before_sending_anything(grafana: StandIn) -> None:
    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", grafana.url, "--token", "t", "--uid", "nope"]
    )

    assert result.exit_code == 2
    assert "nope" in result.output
    assert grafana.requests == []


def _one_line_error(result: Any) -> str:
    """The CLI's error, checked to be a single ``Error:`` line with no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    (line,) = result.output.splitlines()
    assert line.startswith("Error: "), line
    return str(line)


def test_import_reports_an_unreachable_grafana_in_words() -> None:
    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", "http://127.0.0.1:9", "--token", "t"]
    )

    line = _one_line_error(result)
    assert line.startswith("Error: cannot reach Grafana at http://127.0.0.1:9: "), line
    assert "Error(" not in line and "Errno" not in line


@pytest.mark.parametrize(
    ("reply", "content_type", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Hello</body></html>", "text/html", "text/html, not JSON"),
        (b"[1]", "application/json", "db answered [1], not a dashboard import result"),
        (b'{"ok": true}', "application/json", 'db answered {"ok": true}, not a dashboard import'),
        (b"", "text/plain", "db answered an empty body, not"),
    ],
)
def test_import_says_when_the_url_is_not_grafana(
    grafana: StandIn, reply: bytes, content_type: str, reason: str
) -> None:
    grafana.reply, grafana.content_type = reply, content_type

    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", grafana.url, "--token", "t"]
    )

    line = _one_line_error(result)
    assert line.startswith(f"Error: {grafana.url} does not look like Grafana: "), line
    assert reason in line
    assert len(grafana.requests) == 1


def test_import_shortens_an_html_error_page_to_one_line(grafana: StandIn) -> None:
    grafana.status = 404
    grafana.content_type = "text/html"
    grafana.reply = b"<!DOCTYPE html>\n<html>\n<head><title>404</title></head>\n<body>\n" + (
        b"<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n" * 20
    )

    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", grafana.url, "--token", "t"]
    )

    line = _one_line_error(result)
    assert "HTTP 404 Not Found The requested URL" in line
    assert "<" not in line and len(line) < 250


def test_import_refuses_a_url_without_a_scheme() -> None:
    result = CliRunner().invoke(
        main, ["dashboards", "import", "--url", "localhost:3000", "--token", "t"]
    )

    assert result.exit_code == 2
    assert "--url" in result.output and "http://" in result.output


def test_import_help_names_both_environment_variables() -> None:
    result = CliRunner().invoke(main, ["dashboards", "import", "--help"])

    assert "GRAFANA_URL" in result.output and "GRAFANA_TOKEN" in result.output


def test_export_writes_the_json_files_and_check_accepts_them(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "dash"

    exported = runner.invoke(main, ["dashboards", "export", "--out", str(out)])
    checked = runner.invoke(main, ["dashboards", "export", "--out", str(out), "--check"])

    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.glob("*.json")) == sorted(
        f"{d['uid']}.json" for d in dashboards.list_dashboards()
    )
    assert checked.exit_code == 0, checked.output


def test_export_check_fails_on_a_hand_edited_file(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["dashboards", "export", "--out", str(tmp_path)])
    edited = tmp_path / "voice-api.json"
    edited.write_text(edited.read_text().replace("Voice API Performance", "Edited"))

    checked = runner.invoke(main, ["dashboards", "export", "--out", str(tmp_path), "--check"])

    assert checked.exit_code == 1
    assert "voice-api" in checked.output


def test_export_check_of_a_missing_directory_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    result = CliRunner().invoke(main, ["dashboards", "export", "--out", str(missing), "--check"])

    assert result.exit_code == 1
    assert f"{missing} is not a directory" in result.output
    assert "out of date" not in result.output


def test_list_prints_uid_and_title() -> None:
    result = CliRunner().invoke(main, ["dashboards", "list"])

    assert result.exit_code == 0
    assert "voice-overview" in result.output and "Voice Agent Overview" in result.output
