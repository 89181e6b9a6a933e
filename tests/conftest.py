"""Shared fixtures: every test gets its own AUTODO_HOME, its own database and no real model keys.

With ``AUTODO_TEST_POSTGRES`` set to a server URL (``postgresql://user@host:port/db``) every test
gets a fresh PostgreSQL database instead of the SQLite files in its home, so the same suite
checks both backends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from ulid import ULID

from autodo.config import Settings
from autodo.desk import Desk

MODEL_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AUTODO_MODEL")
POSTGRES_SERVER = os.environ.get("AUTODO_TEST_POSTGRES")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass leaves out tests that never open the store: they cannot differ there."""
    if POSTGRES_SERVER is None:
        return
    storeless = [item for item in items if item.get_closest_marker("storeless")]
    if storeless:
        config.hook.pytest_deselected(items=storeless)
        items[:] = [item for item in items if not item.get_closest_marker("storeless")]


def pytest_report_header() -> str:
    return f"autodo store: {'PostgreSQL at ' + POSTGRES_SERVER if POSTGRES_SERVER else 'SQLite'}"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home for each test, with the environment's model settings removed."""
    path = tmp_path / "home"
    monkeypatch.setenv("AUTODO_HOME", str(path))
    monkeypatch.delenv("AUTODO_DATABASE_URL", raising=False)
    for name in MODEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # so no stray .env file is read
    if POSTGRES_SERVER is None:
        yield path
        return
    with fresh_postgres_database(POSTGRES_SERVER) as url:
        monkeypatch.setenv("AUTODO_DATABASE_URL", url)
        yield path


@pytest.fixture
def desk(home: Path) -> Desk:
    return Desk(Settings())


@pytest.fixture
def on_postgres() -> bool:
    return POSTGRES_SERVER is not None


class fresh_postgres_database:
    """Create an empty database on the server for one test and drop it afterwards."""

    def __init__(self, server_url: str) -> None:
        self.admin = sa.create_engine(_psycopg(server_url), isolation_level="AUTOCOMMIT")
        self.name = f"autodo_test_{str(ULID()).lower()}"
        self.url = server_url.rsplit("/", 1)[0] + f"/{self.name}"

    def __enter__(self) -> str:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def __exit__(self, *_exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]
