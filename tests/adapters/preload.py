"""pytest plugin for the adapter checks: import the frameworks before warnings become errors.

Pipecat and LiveKit warn about their own internals while they import (a deprecated standard
module they use, deprecated classes they still define). Those are not ours to fix, so the
modules named by the ``preload`` ini option (the rigs, which import the frameworks) are imported
once here with deprecation warnings ignored. Everything after that, including any deprecated
framework API our adapters call, runs under the ``error`` filter of ``checks.ini``.
"""

from __future__ import annotations

import importlib
import warnings

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("preload", "modules to import before the tests", type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in config.getini("preload"):
            importlib.import_module(name)
