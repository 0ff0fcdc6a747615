"""Dependencies point inward: the domain never imports the GraphQL or HTTP layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "group_orders"
DOMAIN = ["services", "auth", "db", "storage", "errors.py", "enums.py", "views.py", "settings.py"]
FORBIDDEN = (
    "strawberry",
    "starlette",
    "graphql",
    "uvicorn",
    "group_orders.schema",
    "group_orders.resolvers",
    "group_orders.web",
    "group_orders.app",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def domain_files() -> list[Path]:
    files: list[Path] = []
    for entry in DOMAIN:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domain_module_imports_no_api_layer(path: Path) -> None:
    # when
    offending = sorted(
        name
        for name in imported_modules(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )

    # then
    assert offending == []
