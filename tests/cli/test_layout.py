"""The CLI stays thin: no command module imports another, and none grows past ~200 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from qlora_eval.cli.main import COMMANDS

CLI = Path(__file__).resolve().parents[2] / "qlora_eval" / "cli"
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_command_modules_import_no_other_command(module: str) -> None:
    others = {f"qlora_eval.cli.{m}" for m in COMMAND_MODULES if m != module}
    assert not _imported_modules(CLI / f"{module}.py") & others, "move shared parts to a helper (cli/options.py)"


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 210, f"{path.name} has {lines} lines: move the work into a workflow (qlora_eval/workflows/)"
