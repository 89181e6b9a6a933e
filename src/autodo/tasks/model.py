"""Tasks, their lanes and states."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from autodo.errors import InvalidInput

MAX_TITLE = 500
MAX_BODY = 100_000


class Lane(StrEnum):
    """Who does the task: agents, agents after the person answers, or only the person."""

    AGENT = "agent"
    ASK = "ask"
    HUMAN = "human"


class State(StrEnum):
    NEW = "new"  # not yet triaged: the board's Inbox column
    BLOCKED = "blocked"  # waits for its blockers to be done
    QUEUED = "queued"  # ready, waiting for a free agent
    RUNNING = "running"
    WAITING = "waiting"  # a question, approval or budget request is open with the person
    PAUSED = "paused"  # the person paused its run; `autodo resume` continues it
    REVIEW = "review"  # the agent is done; the profile asks for a person's review
    YOURS = "yours"  # handed to the person
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.DONE, State.FAILED, State.CANCELLED})

PRIORITIES = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
PRIORITY_NAMES = {number: name for name, number in PRIORITIES.items()}

# Board columns in the order the board shows them.
COLUMNS: dict[str, tuple[State, ...]] = {
    "Inbox": (State.NEW,),
    "Agents working": (State.QUEUED, State.RUNNING, State.BLOCKED),
    "Waiting on you": (State.WAITING, State.PAUSED),
    "Yours": (State.YOURS,),
    "Review": (State.REVIEW,),
    "Done": (State.DONE, State.FAILED, State.CANCELLED),
}


class Task(BaseModel):
    """A task as every surface shows it (`--json` prints this)."""

    id: str
    title: str
    body: str
    source: str
    priority: str
    labels: list[str]
    lane: Lane | None
    lane_reason: str | None
    lane_set_by: str | None
    state: State
    profile: str
    parent_id: str | None
    blocked_by: list[str] = Field(default_factory=list)
    context: str
    result: str | None
    attempts: int
    budget: dict[str, Any] | None = None  # the task's own limits (see autodo.runs.budget)
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any, blocked_by: list[str]) -> Task:
        data = dict(row._mapping)
        data["priority"] = PRIORITY_NAMES.get(data["priority"], "normal")
        return cls(**data, blocked_by=blocked_by)

    @property
    def column(self) -> str:
        return next(name for name, states in COLUMNS.items() if self.state in states)


class NewTask(BaseModel):
    """What a person, an agent or a source gives to create a task."""

    title: str
    body: str = ""
    priority: str = "normal"
    labels: list[str] = Field(default_factory=list)
    blocked_by: list[str] = Field(default_factory=list)
    profile: str | None = None
    source: str = "cli"
    parent_id: str | None = None
    budget: dict[str, Any] | None = None  # validated limits, e.g. from parse_budget("turns=20 usd=1")

    def validated(self) -> NewTask:
        """This request with whitespace trimmed, or InvalidInput saying what to fix."""
        title = " ".join(self.title.split())
        if not title:
            raise InvalidInput("the task title is empty; give a short sentence saying what should be done")
        if len(title) > MAX_TITLE:
            raise InvalidInput(
                f"the task title is {len(title)} characters; keep it under {MAX_TITLE} and put details in the body"
            )
        if len(self.body) > MAX_BODY:
            raise InvalidInput(f"the task body is {len(self.body)} characters; the limit is {MAX_BODY}")
        if self.priority not in PRIORITIES:
            raise InvalidInput(f"unknown priority {self.priority!r}; use one of {', '.join(PRIORITIES)}")
        labels = [label.strip() for label in self.labels if label.strip()]
        return self.model_copy(update={"title": title, "labels": labels})


def lane_from_labels(labels: list[str]) -> Lane | None:
    """A `lane:agent|ask|human` label decides the lane without triage."""
    for label in labels:
        if label.startswith("lane:"):
            return parse_lane(label.removeprefix("lane:"))
    return None


def profile_from_labels(labels: list[str]) -> str | None:
    for label in labels:
        if label.startswith("profile:"):
            return label.removeprefix("profile:")
    return None


def parse_lane(value: str) -> Lane:
    try:
        return Lane(value)
    except ValueError:
        raise InvalidInput(f"unknown lane {value!r}; use agent, ask or human") from None
