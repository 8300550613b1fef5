"""The design's layering rules, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FORBIDDEN = ("azure.functions", "aws_lambda_powertools")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_shared_never_imports_a_cloud_runtime() -> None:
    offenders = []
    files = sorted((REPO / "shared").rglob("*.py"))
    assert len(files) > 20
    for f in files:
        for mod in imports_of(f):
            if any(mod == bad or mod.startswith(bad + ".") for bad in FORBIDDEN):
                offenders.append(f"{f.relative_to(REPO)}: {mod}")
    assert offenders == []


def test_function_app_is_composition_only() -> None:
    tree = ast.parse((REPO / "function_app.py").read_text())
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "Import", "ImportFrom", "Assign"}, kinds
