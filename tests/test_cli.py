"""The ``voice-otel`` command group: errors a user can cause are one line, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from voice_otel.cli import main
from voice_otel.stack import free_port
from voice_otel.stack._components import duration_seconds


@pytest.mark.parametrize(
    "args",
    [
        ["rules", "render", "--out", "{blocked}/rules"],
        ["dashboards", "export", "--out", "{blocked}/dashboards"],
    ],
    ids=["rules-render", "dashboards-export"],
)
def test_an_output_path_the_system_refuses_is_a_one_line_error(
    tmp_path: Path, args: list[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    args = [a.format(blocked=blocked) for a in args]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Error: {blocked}" in result.output
    assert "Traceback" not in result.output


# -- voice-otel stack: mistakes caught before anything starts --------------------------------

PROGRAM_ENV = ("COLLECTOR", "JAEGER", "PROMETHEUS", "ALERTMANAGER")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("1s", 1.0),
        ("15s", 15.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1m30s", 90.0),
        ("1s500ms", 1.5),
    ],
)
def test_stack_durations_are_whole_numbers_with_units_h_m_s_and_ms(
    value: str, seconds: float
) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["abc", "-5s", "0s", "1.5s", "5", "5 s", "1d"])
def test_stack_up_rejects_a_bad_scrape_interval_before_starting_anything(
    tmp_path: Path, value: str
) -> None:
    workdir = tmp_path / "run"
    # Should the check ever go, the stack still must not start here: no programs, free ports.
    missing = str(tmp_path / "missing")
    env = {f"VOICE_OTEL_{name}_BIN": missing for name in PROGRAM_ENV}
    args = ["stack", "up", "--free-ports", "--workdir", str(workdir), "--scrape-interval", value]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--scrape-interval': unsupported duration {value!r}" in (
        result.output.replace("\n", " ")
    )
    assert "Traceback" not in result.output
    assert not workdir.exists()  # no program was started, not even a log written


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_stack_down_takes_a_finite_grace_of_zero_or_more(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(
        main, ["stack", "down", "--workdir", str(tmp_path), "--grace", value]
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--grace'" in result.output


# -- voice-otel stack: a damaged state.json --------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that stands in for one of the stack's programs."""
    proc = subprocess.Popen([shutil.which("sleep") or "/bin/sleep", "300"])
    _wait_for_exec(proc)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _wait_for_exec(proc: subprocess.Popen[bytes]) -> None:
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while not cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # just after exec the kernel shows an empty command line for a moment


def _state_text(proc: subprocess.Popen[bytes]) -> str:
    """state.json as `stack up` writes it, for one program."""
    entry = {"url": "http://127.0.0.1:1", "pid": proc.pid, "ready_url": "http://127.0.0.1:1/",
             "log": "/tmp/x.log", "argv": [str(proc.args[0]), "300"]}  # type: ignore[index]  # fmt: skip
    return json.dumps({"prometheus": entry}, indent=2)


@pytest.mark.parametrize("command", ["status", "up"])
def test_stack_status_and_up_name_a_damaged_state_file_and_its_pids(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], command: str
) -> None:
    state = tmp_path / "state.json"
    state.write_text(_state_text(sleeper)[:-10])  # cut short, as by a full disk

    result = CliRunner().invoke(main, ["stack", command, "--workdir", str(tmp_path)])

    assert result.exit_code == 1, result.output
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: {state} is not valid JSON")
    assert f"pid {sleeper.pid}" in line
    assert "stack down" in line
    assert sleeper.poll() is None  # status never stops anything
    assert state.exists()


def test_stack_down_stops_what_a_damaged_state_file_still_names(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = tmp_path / "state.json"
    text = _state_text(sleeper)
    state.write_text(text[: text.index('"300"')])  # cut short, as by a full disk

    result = CliRunner().invoke(main, ["stack", "down", "--workdir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert f"sleep: stopped (pid {sleeper.pid})" in result.output
    assert "is not valid JSON" in result.output
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert not state.exists()


def test_stack_down_leaves_a_pid_it_cannot_identify_to_the_user(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = tmp_path / "state.json"
    text = _state_text(sleeper)
    state.write_text(text[: text.index('"argv"')])  # the program's path is lost

    result = CliRunner().invoke(main, ["stack", "down", "--workdir", str(tmp_path)])

    assert result.exit_code == 1, result.output
    assert f"not stopped: pid {sleeper.pid}" in result.output
    assert "by hand" in result.output
    assert sleeper.poll() is None  # a pid alone may be someone else's process by now
    assert state.exists()


def test_stack_down_knows_a_program_by_its_command_line_pointing_into_the_workdir(
    tmp_path: Path,
) -> None:
    # Prometheus and Alertmanager read their config and data from the workdir.
    config = f"--config.file={tmp_path}/prometheus.yml"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", config])
    try:
        _wait_for_exec(proc)
        state = tmp_path / "state.json"
        state.write_text(f'{{"prometheus": {{"url": "http://127.0.0.1:1", "pid": {proc.pid}, "r')

        result = CliRunner().invoke(main, ["stack", "down", "--workdir", str(tmp_path)])

        assert result.exit_code == 0, result.output
        assert f"stopped (pid {proc.pid})" in result.output
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert not state.exists()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("text", ["", "garbage", "[1, 2]", '{"collector": 5}'])
def test_stack_down_with_no_legible_pid_says_to_stop_the_programs_by_hand(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "state.json").write_text(text)

    for command in ("down", "status"):
        result = CliRunner().invoke(main, ["stack", command, "--workdir", str(tmp_path)])
        assert result.exit_code == 1, result.output
        (line,) = result.output.splitlines()
        assert line.startswith(f"Error: {tmp_path / 'state.json'} is not")
        assert "no pids are legible in it" in line and "by hand" in line


# -- voice-otel stack: a stack without --workdir, custom rules, a partly running stack -------


@pytest.mark.parametrize(("command", "code"), [("status", 1), ("down", 0)])
def test_stack_status_and_down_without_workdir_say_a_workdir_stack_needs_it(
    tmp_path: Path, command: str, code: int
) -> None:
    env = {"VOICE_OTEL_CACHE": str(tmp_path / "cache")}

    result = CliRunner().invoke(main, ["stack", command], env=env)

    assert result.exit_code == code, result.output
    text = " ".join(result.output.split())
    assert f"no stack started from {tmp_path / 'cache' / 'run'}" in text
    assert "`stack up --workdir DIR` needs `--workdir DIR` here too" in text


def _no_programs(tmp_path: Path) -> dict[str, str]:
    """Environment where no stack program can be found, should a check ever go."""
    missing = str(tmp_path / "missing")
    return {f"VOICE_OTEL_{name}_BIN": missing for name in PROGRAM_ENV}


@pytest.mark.parametrize(
    ("make", "option", "error"),
    [
        (lambda d: d / "nowhere", "--rules-dir", "does not exist"),
        (lambda d: d / "nowhere.yml", "--rule-file", "does not exist"),
        (lambda d: d, "--rules-dir", "no *.yml files in"),
        (lambda d: _write(d / "bad.yml", "groups: [\n"), "--rule-file", "bad.yml"),
        (lambda d: _write(d / "x.yml", "scrape_configs: []\n"), "--rule-file", "no `groups:`"),
    ],
    ids=["missing-dir", "missing-file", "empty-dir", "not-yaml", "not-rules"],
)
def test_stack_up_checks_custom_rule_files_before_starting_anything(
    tmp_path: Path, make: Any, option: str, error: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    workdir = tmp_path / "run"
    args = ["stack", "up", "--free-ports", "--workdir", str(workdir), option, str(make(rules))]

    result = CliRunner().invoke(main, args, env=_no_programs(tmp_path))

    assert result.exit_code == 2, result.output
    assert error in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not workdir.exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_stack_up_accepts_rendered_rules_before_looking_for_programs(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rendered = CliRunner().invoke(main, ["rules", "render", "--objective", "1.5", "--out", rules])
    assert rendered.exit_code == 0, rendered.output
    extra = _write(tmp_path / "extra.yml", "groups: []\n")
    workdir = tmp_path / "run"
    args = ["stack", "up", "--free-ports", "--workdir", str(workdir),
            "--rules-dir", str(rules), "--rule-file", str(extra)]  # fmt: skip

    result = CliRunner().invoke(main, args, env=_no_programs(tmp_path))

    # The rule files pass the check; only then is a program looked for (and missing here).
    # That Prometheus loads them is tested with the real programs in test_stack_cli.py.
    assert result.exit_code == 1, result.output
    assert "missing" in result.output


def _serving(port_variable: str) -> list[str]:
    """A stand-in program that listens on the port an environment variable names."""
    code = (
        "import http.server, os; http.server.HTTPServer(('127.0.0.1', "
        f"int(os.environ['{port_variable}'])), http.server.SimpleHTTPRequestHandler)"
        ".serve_forever()"
    )
    return [sys.executable, "-c", code]


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# `stack up` leaves the restarted program running on purpose; run in this process, its Popen
# object says so when collected.
@pytest.mark.filterwarnings("ignore:subprocess [0-9]+ is still running:ResourceWarning")
def test_stack_up_restarts_only_the_programs_that_are_down_on_their_ports(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    port = free_port()
    ready = f"http://127.0.0.1:{port}/"
    running = json.loads(_state_text(sleeper))["prometheus"]
    dead = {"otlp_http": ready, "pid": _exited_pid(), "ready_url": ready,
            "log": str(tmp_path / "collector.log"), "argv": _serving("VOICE_OTEL_HTTP_PORT"),
            "env": {"VOICE_OTEL_HTTP_PORT": str(port)}}  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps({"collector": dead, "prometheus": running}))
    args = ["stack", "up", "--workdir", str(tmp_path)]

    result = CliRunner().invoke(main, [*args, "--free-ports"], env=_no_programs(tmp_path))

    state = json.loads((tmp_path / "state.json").read_text())
    pid = state["collector"]["pid"]
    try:
        assert result.exit_code == 0, result.output
        assert f"collector: restarted (pid {pid}) with the ports it had" in result.output
        assert "prometheus: restarted" not in result.output
        assert "--free-ports not applied" in " ".join(result.output.split())
        assert pid != dead["pid"]
        assert state["prometheus"] == running
        assert state["collector"]["env"] == dead["env"]
        assert httpx.get(ready, timeout=5).status_code == 200

        again = CliRunner().invoke(main, args)
        assert again.exit_code == 1
        assert "already up" in again.output
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # the restarted program is this process' child here


def test_stack_up_on_a_partly_down_stack_from_an_older_state_file_says_what_to_do(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    running = json.loads(_state_text(sleeper))["prometheus"]
    dead = {"pid": _exited_pid(), "ready_url": "http://127.0.0.1:1/", "log": "/tmp/c.log",
            "argv": _serving("VOICE_OTEL_HTTP_PORT")}  # fmt: skip  # no "env": older voice-otel
    (tmp_path / "state.json").write_text(json.dumps({"collector": dead, "prometheus": running}))

    result = CliRunner().invoke(main, ["stack", "up", "--workdir", str(tmp_path)])

    assert result.exit_code == 1, result.output
    assert "collector not running" in result.output
    assert "stack down" in result.output
    assert sleeper.poll() is None
