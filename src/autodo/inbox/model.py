"""Inbox items: everything that waits on the person."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class ItemKind(StrEnum):
    QUESTION = "question"  # an agent, or triage, needs an answer
    HANDOFF = "handoff"  # only the person can do this
    REVIEW = "review"  # the agent is done; the person checks the result
    APPROVAL = "approval"  # a tool call waits for the person to allow it
    BUDGET = "budget"  # the run reached its budget: raise it or stop


class ItemState(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


class InboxItem(BaseModel):
    id: str
    task_id: str
    run_id: str | None
    kind: ItemKind
    state: ItemState
    prompt: str
    context: dict[str, Any]
    answer: str | None
    answered_by: str | None
    created_at: str
    answered_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> InboxItem:
        data = dict(row._mapping)
        data.pop("key")
        return cls.model_validate(data)
