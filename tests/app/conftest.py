"""Fixtures for driving the real app with Streamlit's AppTest.

Each test gets its own data directory (SQLite file, LanceDB tables, originals), the real
embedding model, and a fresh engine: the app keeps its `Loupe` in `st.cache_resource`, which is
process-wide, so the cache is cleared around every test. Tests run in their temporary directory,
so a developer's `.env` or `.streamlit/secrets.toml` never leaks in; secrets come from
`AppTest.secrets`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import app_test

import ui as _shared
from core.config import get_settings
from core.service import Loupe
from tests.app.support import HANDBOOK, TRAVEL


class _NavigationPagesManager(PagesManager):
    """AppTest forgets before every run that the app uses `st.navigation`, so a `pages/`
    folder would send each run through Streamlit's legacy multipage mode (which runs the
    page file without app.py). A served app leaves that mode for good at its first
    `st.navigation` call; this restores that state for every test run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)


@pytest.fixture(autouse=True)
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LOUPE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LOUPE_LLM", "extractive")
    for name in ("DATABASE_URL", "LOUPE_DATABASE_URL", "LOUPE_VECTOR_STORE", "LOUPE_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield data_dir
    st.cache_resource.clear()  # closes this test's engine (on_release)
    get_settings.cache_clear()


@pytest.fixture
def engine() -> Loupe:
    """The engine the app uses in this test (the same cached instance)."""
    return _shared.engine()


@pytest.fixture
def documents(engine: Loupe) -> Loupe:
    """The engine with two small documents indexed."""
    results = engine.ingest([HANDBOOK, TRAVEL], tags=["policies"])
    assert {r.outcome for r in results} == {"indexed"}
    return engine
