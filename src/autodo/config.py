"""Settings read from the environment (and a ``.env`` file), with vendor key names."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where autodo keeps its state and which model it talks to."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("autodo")),
        validation_alias=AliasChoices("AUTODO_HOME", "home"),
    )
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("AUTODO_DATABASE_URL", "database_url"))
    model: str | None = Field(default=None, validation_alias=AliasChoices("AUTODO_MODEL", "model"))
    openai_api_key: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    anthropic_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key")
    )
    anthropic_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "anthropic_base_url")
    )

    @cached_property
    def store_url(self) -> str:
        """The domain store: the configured URL or one SQLite file in the home."""
        if self.database_url:
            return _sqlalchemy_url(self.database_url)
        return f"sqlite:///{self.home / 'autodo.db'}"

    @cached_property
    def system_database_url(self) -> str:
        """DBOS's own database, next to the store."""
        if self.database_url:
            return _sqlalchemy_url(self.database_url)
        return f"sqlite:///{self.home / 'runs.sqlite'}"

    @property
    def profiles_path(self) -> Path:
        return self.home / "profiles.toml"

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"


def _sqlalchemy_url(url: str) -> str:
    # Users write libpq URLs; SQLAlchemy needs the driver named to pick psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
