"""The shape the README's architecture map promises, checked so it stays true: imports go down
(pages → service → flows → stores/db → config), swappable parts are registered, and every
setting is documented where operators look for it."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import pytest

from core.config import Settings
from core.embeddings import EMBEDDINGS
from core.stores import STORES

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def python_files(*places: str) -> list[Path]:
    files: list[Path] = []
    for place in places:
        path = ROOT / place
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


@pytest.mark.parametrize("path", python_files("pages", "ui.py", "app.py"), ids=str)
def test_pages_never_touch_the_database_layer(path: Path) -> None:
    """Pages get frozen records from the facade; an ORM row in a page is read after its session
    closed, and a page holding ORM classes can write behind the service's back."""
    leaks = {m for m in imported_modules(path) if m == "core.db" or m.startswith("core.db.")}
    assert not leaks, f"{path.relative_to(ROOT)} imports {sorted(leaks)}"


@pytest.mark.parametrize("path", python_files("core/answer"), ids=str)
def test_the_answer_flow_has_no_sql(path: Path) -> None:
    forbidden = {
        m
        for m in imported_modules(path)
        if m.split(".")[0] == "sqlalchemy"
        or m.startswith(("core.db", "core.service", "core.learn", "core.ingest"))
    }
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", python_files("core"), ids=str)
def test_core_never_imports_the_ui(path: Path) -> None:
    ui = {m for m in imported_modules(path) if m.split(".")[0] in {"streamlit", "ui", "pages"}}
    assert not ui, f"{path.relative_to(ROOT)} imports {sorted(ui)}"


def literal_choices(field: str) -> set[str]:
    annotation = typing.get_type_hints(Settings)[field]
    return set(typing.get_args(annotation))


def test_every_configurable_store_and_embedding_model_is_registered() -> None:
    assert set(STORES) == literal_choices("vector_store")
    assert set(EMBEDDINGS) == literal_choices("embeddings")


def setting_names(field: str) -> list[str]:
    """The environment names a setting is read under (`LOUPE_X` and conventional aliases)."""
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", [alias])
    return [str(name) for name in choices if str(name).isupper()]


@pytest.mark.parametrize("field", sorted(Settings.model_fields), ids=str)
def test_every_setting_is_documented(field: str) -> None:
    """An undocumented setting is one nobody can use, and one that may be dead."""
    names = setting_names(field)
    assert names, f"{field} has no environment name"
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + (
        ROOT / "docs" / "production.md"
    ).read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    mentioned = lambda text: any(re.search(rf"\b{name}\b", text) for name in names)  # noqa: E731
    assert mentioned(docs), f"{field} ({' / '.join(names)}) is not in README.md or production.md"
    assert mentioned(example), f"{field} ({' / '.join(names)}) is not in .env.example"
