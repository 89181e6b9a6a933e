"""Open the store: one engine per URL, WAL on SQLite, migrations applied on open."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

_MIGRATIONS = str(Path(__file__).with_name("migrations"))


def now() -> str:
    """The current UTC time as the ISO string the store keeps."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def seconds_since(stamp: str) -> float:
    """Seconds from a stored timestamp until now."""
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()


def open_store(url: str) -> sa.Engine:
    """An engine on a migrated store."""
    engine = create_engine(url)
    migrate(engine)
    return engine


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # WAL lets the workers, the CLI and the board read while a run writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: sa.Engine) -> None:
    """Apply every pending migration."""
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def enable_wal(sqlite_url: str) -> None:
    """Switch an SQLite file (DBOS's) to WAL before DBOS opens it; the mode persists in the file."""
    path = sqlite_url.removeprefix("sqlite:///")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
