"""Runs: one attempt of one profile on one task."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATES = (RunState.QUEUED.value, RunState.RUNNING.value, RunState.WAITING.value, RunState.PAUSED.value)
LIVE_RUN_STATES = (RunState.RUNNING.value, RunState.WAITING.value)  # a message can reach these now


class Run(BaseModel):
    id: str
    task_id: str
    attempt: int
    profile: str
    state: RunState
    worker: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    tool_calls: int
    cost_usd: float | None
    waited_seconds: float
    summary: str | None
    error: str | None
    created_at: str
    started_at: str | None
    ended_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> Run:
        data = dict(row._mapping)
        data.pop("enqueued")
        return cls.model_validate(data)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def queue_name(profile: str) -> str:
    """The DBOS queue of a profile's runs; its limits are the profile's concurrency."""
    return f"autodo.profile.{profile}"


def run_id_for(task_id: str, attempt: int) -> str:
    """The run id, which is also its DBOS workflow id."""
    return f"run-{task_id}-{attempt}"


@dataclass(frozen=True)
class RunDeps:
    """What the agent's tools know about the run they serve (kept small: it crosses step boundaries)."""

    run_id: str
    task_id: str
    workspace: str
    command_timeout: float
    profile: str


class Finish(BaseModel):
    """The agent is done: what it did and which files it wrote."""

    summary: str


class HandOff(BaseModel):
    """Only the person can do what remains: say exactly what they must do."""

    reason: str
