"""What a worker process holds while it runs workflows: settings, store, profiles and agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic_ai import Agent

from autodo.agents.profiles import Profile, ProfileFile, get_profile
from autodo.config import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    profiles: ProfileFile
    worker_id: str
    agents: dict[str, Agent[Any, Any]] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        return get_profile(self.profiles, name)


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the one this process's workflows use (DBOS workflows are module functions)."""
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no worker runtime installed; workflows run only inside `autodo work`")
    return _current
