"""Agent profiles: who works a task, with which model, tools and budget (``profiles.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autodo.approvals.rules import ApprovalRules
from autodo.errors import ConfigError, NotFound
from autodo.policy.egress import HttpAllow
from autodo.policy.taint import UntrustedInput
from autodo.runs.budget import Budget, Price

ALL_TOOLS = (
    "read_file", "write_file", "edit_file", "list_dir", "search_files", "run_command",
    "ask_human", "hand_to_human", "add_subtask", "http_request",
)  # fmt: skip

DEFAULT_INSTRUCTIONS = (
    "You are a careful, capable agent on a small team managed by a person. Work only inside your task "
    "workspace using your tools. When something only the person knows blocks you, call ask_human with one "
    "clear question. When the task needs the person to act (sign, pay, decide, log in), call hand_to_human. "
    "When you are done, call finish with a short summary of what you did and which files you wrote."
)


class Profile(BaseModel):
    """One kind of agent on the team."""

    model_config = ConfigDict(extra="forbid")

    name: str
    model: str | None = None  # provider:model; None means the default model
    base_url: str | None = None
    api_key_env: str | None = None
    instructions: str = DEFAULT_INSTRUCTIONS
    tools: list[str] = Field(default_factory=lambda: list(ALL_TOOLS))
    concurrency: int = Field(default=2, ge=1, le=64)
    budget: Budget = Field(default_factory=lambda: Budget(turns=40))
    price: Price | None = None  # USD per million tokens; else the bundled price table, else unknown
    approvals: ApprovalRules = Field(default_factory=ApprovalRules)
    review: bool = False  # a person reviews the result before the task is done
    command_timeout: float = Field(default=120.0, gt=0, le=3600)
    request_timeout: float = Field(default=120.0, gt=0, le=3600)
    max_retries: int = Field(default=4, ge=0, le=20)  # for 429, 5xx and timeouts, with backoff
    sandbox: Literal["auto", "bwrap", "landlock", "none"] = "auto"  # OS confinement of commands; see docs/security.md
    network: list[HttpAllow] = Field(default_factory=list)  # what http_request may reach; empty: nothing
    untrusted_input: UntrustedInput = "ask"  # the rule of two; see docs/security.md

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[str]) -> list[str]:
        unknown = sorted(set(tools) - set(ALL_TOOLS))
        if unknown:
            raise ValueError(f"unknown tools {unknown}; available: {', '.join(ALL_TOOLS)}")
        return tools


class ProfileFile(BaseModel):
    """The whole ``profiles.toml``."""

    model_config = ConfigDict(extra="forbid")

    triage_model: str | None = None
    triage_base_url: str | None = None
    triage_max_retries: int = Field(default=4, ge=0, le=20)
    profile: dict[str, Profile] = Field(default_factory=dict)


def load_profiles(path: Path) -> ProfileFile:
    """Read the profile file, or the defaults when there is none."""
    raw = _read_toml(path) if path.exists() else {}
    for name, table in raw.get("profile", {}).items():
        if isinstance(table, dict):
            table.setdefault("name", name)
    try:
        loaded = ProfileFile.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}") from None
    if "default" not in loaded.profile:
        loaded.profile["default"] = Profile(name="default")
    return loaded


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}; fix the line it names") from None


def _describe(error: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()]
    return "; ".join(problems)


def get_profile(profiles: ProfileFile, name: str) -> Profile:
    try:
        return profiles.profile[name]
    except KeyError:
        known = ", ".join(sorted(profiles.profile))
        raise NotFound(f"no agent profile {name!r}; known profiles: {known} (see `autodo profiles`)") from None
