"""The suite has a global per-test timeout, so a hung test fails CI instead of hanging it (issue 14)."""

from __future__ import annotations

import pytest


def test_global_timeout_is_configured(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout (dev extra) is not installed"
    timeout = request.config.getini("timeout")
    assert timeout, "set `timeout = ...` in [tool.pytest.ini_options]"
    assert 0 < float(timeout) <= 600
