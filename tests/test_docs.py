"""The quickstart's code runs as the page says, and the site lists every page.

The Python blocks of docs/quickstart.md are copied out of the page and run as scripts: the
instrumented pipeline on its own (embedded default), then into the real local stack, where the
trace-tree script must print the trace back from Jaeger. The strict MkDocs build itself runs in
scripts/test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from voice_otel.stack import BinaryNotFound, LocalStack, find

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


def run_script(
    code: str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = cwd / "script.py"
    script.write_text(code)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "VOICE_OTEL_"))}
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


LINE = re.compile(r"voice-to-voice (?P<total>[\d.]+) s (?P<parts>\{.*\})")


def test_quickstart_pipeline_prints_each_turn_and_writes_the_file(tmp_path: Path) -> None:
    result = run_script(
        python_blocks("quickstart.md")[0], tmp_path, env={"VOICE_OTEL_PROMETHEUS_PORT": "0"}
    )
    assert result.returncode == 0, result.stderr
    lines = [LINE.match(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and all(lines)
    for match in lines:
        assert match is not None
        parts = yaml.safe_load(match["parts"].replace("'", '"'))
        assert set(parts) == {"stt", "llm", "tts", "other"}
        assert sum(parts.values()) == pytest.approx(float(match["total"]), abs=0.005)

    lines_out = (tmp_path / "voice-otel-telemetry.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines_out]
    names = {
        span["name"]
        for record in records
        for rs in record.get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }
    assert {"voice.conversation", "voice.turn", "speech_to_text stt-1", "chat llm-1"} <= names


def test_every_page_is_in_the_site_navigation() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return []

    listed = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(listed) == on_disk


@pytest.mark.integration
def test_quickstart_trace_reaches_jaeger_and_prints_as_a_tree(tmp_path: Path) -> None:
    for key in ("collector", "jaeger"):
        try:
            find(key)
        except BinaryNotFound as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"required program missing under CI: {exc}")
            pytest.skip(str(exc))

    pipeline, tree = python_blocks("quickstart.md")[:2]
    with LocalStack(tmp_path / "stack", prometheus=False) as stack:
        result = run_script(
            pipeline,
            tmp_path,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
        )
        assert result.returncode == 0, result.stderr

        query = stack.jaeger.query_url
        deadline = time.monotonic() + 60
        while True:
            found = httpx.get(
                f"{query}/api/traces", params={"service": "quickstart-agent"}, timeout=10
            )
            traces = found.json().get("data") if found.status_code == 200 else None
            # The root span (the conversation) ends last: wait until it is stored too.
            if traces and any(
                span["operationName"] == "voice.conversation" for span in traces[0]["spans"]
            ):
                break
            assert time.monotonic() < deadline, found.text
            time.sleep(0.5)
        trace_id = found.json()["data"][0]["traceID"]

        printed = run_script(tree.replace("http://127.0.0.1:16686", query), tmp_path, trace_id)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0] == "voice.conversation"
    assert sum(1 for line in lines if line.startswith("  voice.turn  voice-to-voice")) == 3
    assert "    speech_to_text stt-1" in lines
