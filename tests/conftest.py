"""Shared fixtures: every test gets its own AUTODO_HOME and no real model keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autodo.config import Settings
from autodo.desk import Desk

MODEL_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AUTODO_MODEL")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home for each test, with the environment's model settings removed."""
    path = tmp_path / "home"
    monkeypatch.setenv("AUTODO_HOME", str(path))
    monkeypatch.delenv("AUTODO_DATABASE_URL", raising=False)
    for name in MODEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # so no stray .env file is read
    yield path


@pytest.fixture
def desk(home: Path) -> Desk:
    return Desk(Settings())
