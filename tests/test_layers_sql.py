"""The store is the only place with SQL: no module outside ``qlora_eval/store/`` imports sqlite3 or passes SQL
to ``execute``/``executemany``/``executescript`` (the layer import contracts are checked by import-linter)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qlora_eval"
STORE = PACKAGE / "store"
_SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|REPLACE)\b", re.IGNORECASE
)
_EXECUTE = {"execute", "executemany", "executescript"}


def _text(node: ast.expr) -> str | None:
    """The literal text of a str constant or f-string (its constant parts), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return (left or "") + (right or "") if left is not None or right is not None else None
    return None


def sql_violations(source: str, name: str) -> list[str]:
    """Places in ``source`` that import sqlite3 or pass SQL text to an execute method."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names):
            found.append(f"{name}:{node.lineno}: imports sqlite3")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            found.append(f"{name}:{node.lineno}: imports from sqlite3")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _EXECUTE:
            text = _text(node.args[0]) if node.args else None
            if text is not None and _SQL.search(text):
                found.append(f"{name}:{node.lineno}: SQL passed to .{node.func.attr}()")
    return found


def test_sql_only_in_the_store() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if STORE not in p.parents]
    assert len(modules) > 20  # the walk really sees the package
    violations = [
        v for p in modules for v in sql_violations(p.read_text(encoding="utf-8"), str(p.relative_to(PACKAGE)))
    ]
    assert not violations, "SQL outside qlora_eval/store/ (add a typed Store method instead):\n" + "\n".join(violations)


def test_no_raw_entry_point_leaves_the_store() -> None:
    from qlora_eval.store import Store

    public = {name for name in dir(Store) if not name.startswith("_")}
    assert not public & {"execute", "executemany", "executescript", "transaction", "connection", "conn"}


def test_the_check_catches_sql_and_sqlite3() -> None:
    bad = (
        "import sqlite3\n"
        "from sqlite3 import Row\n"
        "store.execute('SELECT 1 FROM raters')\n"
        "conn.executemany(f'INSERT INTO {t} VALUES (?)', rows)\n"
        "conn.executescript('CREATE TABLE x (y);' + more)\n"
    )
    assert [v.split(": ", 1)[1] for v in sql_violations(bad, "bad.py")] == [
        "imports sqlite3",
        "imports from sqlite3",
        "SQL passed to .execute()",
        "SQL passed to .executemany()",
        "SQL passed to .executescript()",
    ]
    assert sql_violations("pool.execute(job)\nstore.add_judgments(js)\n", "ok.py") == []
