"""Triage: the configured model puts a new task in a lane, with a one-sentence reason."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from pydantic_ai import Agent
from pydantic_ai.models import Model

from autodo.tasks.board import enter_lane, get_task
from autodo.tasks.model import Lane, State, Task

TRIAGE_INSTRUCTIONS = """You triage tasks for a team of AI agents managed by one person.
Decide who should do each task:
- "agent": an AI agent with file and shell tools in a private workspace can do it now.
- "ask": an agent could do it, but first needs an answer only the person has (a preference, a fact,
  a decision). Put that one question in `question`.
- "human": only the person can do it (sign, pay, meet, approve, use their own accounts or body).
Give `reason` as one sentence the person will read on the board."""


class TriageDecision(BaseModel):
    """The model's structured answer."""

    lane: Literal["agent", "ask", "human"]
    reason: str = Field(max_length=500)
    question: str | None = Field(default=None, max_length=1000)


def triage_agent(model: Model) -> Agent[None, TriageDecision]:
    return Agent(model, output_type=TriageDecision, instructions=TRIAGE_INSTRUCTIONS, name="autodo_triage", retries=2)


def triage_prompt(task: Task) -> str:
    text = f"Task: {task.title}"
    if task.body:
        text += f"\n\nDetails:\n{task.body}"
    return text


async def decide_lane(agent: Agent[None, TriageDecision], task: Task) -> TriageDecision:
    result = await agent.run(triage_prompt(task))
    return result.output


def apply_decision(conn: sa.Connection, task_id: str, decision: TriageDecision) -> bool:
    """Record the decision unless the task left the Inbox meanwhile (the person moved it)."""
    if get_task(conn, task_id).state is not State.NEW:
        return False
    question = decision.question if decision.lane == "ask" else None
    enter_lane(conn, task_id, Lane(decision.lane), reason=decision.reason, set_by="triage", question=question)
    return True
