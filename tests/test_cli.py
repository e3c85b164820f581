"""The ``voice-otel`` command group: errors a user can cause are one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voice_otel.cli import main


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
