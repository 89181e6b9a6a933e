"""A message to an agent and how it is delivered."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Mode(StrEnum):
    """When the agent hears the message."""

    STEER = "steer"  # with its next model request
    QUEUE = "queue"  # only when it would otherwise finish
    INTERRUPT = "interrupt"  # now: the current model turn or tool call is cancelled first


class MessageState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DROPPED = "dropped"  # the run ended before it could read the message


class Message(BaseModel):
    id: str
    task_id: str
    run_id: str | None
    mode: Mode
    body: str
    author: str
    state: MessageState
    created_at: str
    delivered_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> Message:
        return cls.model_validate(dict(row._mapping))

    def as_prompt(self) -> str:
        """How the agent reads it: plainly from the person, so it is not mistaken for tool output."""
        return f"Message from {self.author} (your manager): {self.body}"
