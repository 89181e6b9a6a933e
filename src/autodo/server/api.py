"""The REST API, ``/api/v1``: every service function of the CLI as a JSON endpoint.

Routes only translate HTTP to the desk's service functions and back; the rules live there.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import AfterValidator, BaseModel, Field

from autodo.agents.profiles import Profile
from autodo.desk import BoardSummary, Desk, TaskDetail
from autodo.inbox.model import InboxItem
from autodo.overview import Card, Team
from autodo.runs.budget import parse_budget
from autodo.steering.model import Message, Mode
from autodo.tasks.model import MAX_BODY, MAX_TITLE, Lane, NewTask, State, Task
from autodo.workspaces.changes import WorkspaceChanges


def _storable(text: str) -> str:
    """Both databases refuse NUL characters and unpaired surrogates: say so instead of failing."""
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (unpaired surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_storable)]
Id = Annotated[str, Path(pattern=r"^[0-9A-Za-z_.-]{1,80}$", description="A task or inbox item id.")]


class TaskRequest(BaseModel):
    """A new task. A `lane:agent|ask|human` label skips triage; otherwise triage picks the lane."""

    title: Text = Field(max_length=MAX_TITLE, pattern=r"\S", description="A short sentence saying what should be done.")
    body: Text = Field(default="", max_length=MAX_BODY)
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    labels: list[Annotated[Text, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    blocked_by: list[Id] = Field(default_factory=list, max_length=100, description="Tasks that must be done first.")
    profile: Annotated[Text, Field(max_length=80)] | None = Field(default=None, description="Agent profile name.")
    budget: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="The task's own limits, e.g. `turns=60 usd=2`."
    )

    def to_new_task(self) -> NewTask:
        budget = parse_budget(self.budget) if self.budget else None
        fields = self.model_dump(exclude={"budget"})
        return NewTask(**fields, source="api", budget=budget)


class LaneRequest(BaseModel):
    lane: Lane
    reason: Annotated[Text, Field(max_length=2000)] | None = None


class BlockersRequest(BaseModel):
    blocked_by: list[Id] = Field(min_length=1, max_length=100)


class DoneRequest(BaseModel):
    note: Annotated[Text, Field(max_length=20_000)] | None = None


class MessageRequest(BaseModel):
    """A message to the task's running agent."""

    text: Annotated[Text, Field(max_length=20_000, pattern=r"\S")]
    mode: Mode = Field(default=Mode.STEER, description="steer: with the next model request; queue: when it "
                       "would otherwise finish; interrupt: cancel the current turn or tool call first.")  # fmt: skip
    keep: bool = Field(default=False, description="If the task is not running, keep it for its next run.")


class BudgetRequest(BaseModel):
    limits: Annotated[Text, Field(max_length=200, description="e.g. `turns=60 tokens=200000 usd=2 minutes=30`")]


class AnswerRequest(BaseModel):
    text: Annotated[Text, Field(max_length=20_000, pattern=r"\S")]


class ApproveRequest(BaseModel):
    for_run: bool = Field(default=False, description="Allow every call the same rule holds, for the rest of the run.")


class DenyRequest(BaseModel):
    reason: Annotated[Text, Field(max_length=20_000, pattern=r"\S", description="The agent reads it.")]


router = APIRouter(prefix="/api/v1")


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


@router.get("/board", tags=["board"])
def board_summary(request: Request) -> BoardSummary:
    """Counts per board column, what waits on you, and token usage."""
    return desk_of(request).summary()


@router.get("/cards", tags=["board"])
def board_cards(request: Request) -> list[Card]:
    """Every task as a board card: agent, elapsed time, tokens and cost, latest activity."""
    return desk_of(request).cards()


@router.get("/team", tags=["board"])
def team(request: Request) -> Team:
    """Each profile: what its agents do now, its queue, tokens and cost today."""
    return desk_of(request).team()


@router.get("/profiles", tags=["board"])
def profiles(request: Request) -> list[Profile]:
    return list(desk_of(request).profiles.profile.values())


@router.get("/tasks", tags=["tasks"])
def list_tasks(
    request: Request, state: Annotated[list[State] | None, Query()] = None, lane: Lane | None = None
) -> list[Task]:
    """Tasks by priority, then age; filter by state (repeatable) and lane."""
    return desk_of(request).tasks(state, lane)


@router.post("/tasks", status_code=status.HTTP_201_CREATED, tags=["tasks"])
def add_task(request: Request, body: TaskRequest) -> Task:
    return desk_of(request).add(body.to_new_task())


@router.get("/tasks/{task_id}", tags=["tasks"])
def get_task(request: Request, task_id: Id) -> TaskDetail:
    """The task with its runs, open inbox items and full transcript."""
    return desk_of(request).task(task_id)


@router.get("/tasks/{task_id}/changes", tags=["tasks"])
def task_changes(request: Request, task_id: Id) -> WorkspaceChanges:
    """The files the task's agents changed in its workspace, with unified diffs."""
    return desk_of(request).changes(task_id)


@router.post("/tasks/{task_id}/lane", tags=["tasks"])
def move_task(request: Request, task_id: Id, body: LaneRequest) -> Task:
    return desk_of(request).move(task_id, body.lane, body.reason)


@router.post("/tasks/{task_id}/blockers", tags=["tasks"])
def block_task(request: Request, task_id: Id, body: BlockersRequest) -> Task:
    return desk_of(request).block(task_id, body.blocked_by)


@router.post("/tasks/{task_id}/done", tags=["tasks"])
def mark_done(request: Request, task_id: Id, body: DoneRequest | None = None) -> Task:
    return desk_of(request).done(task_id, body.note if body else None)


@router.post("/tasks/{task_id}/cancel", tags=["runs"])
def cancel_task(request: Request, task_id: Id) -> Task:
    """Cancel the task and stop its run; the workspace stays as it is."""
    return desk_of(request).cancel(task_id)


@router.post("/tasks/{task_id}/pause", tags=["runs"])
def pause_task(request: Request, task_id: Id) -> Task:
    return desk_of(request).pause(task_id)


@router.post("/tasks/{task_id}/resume", tags=["runs"])
def resume_task(request: Request, task_id: Id) -> Task:
    return desk_of(request).resume(task_id)


@router.post("/tasks/{task_id}/messages", status_code=status.HTTP_201_CREATED, tags=["runs"])
def send_message(request: Request, task_id: Id, body: MessageRequest) -> Message:
    """Steer the running agent (the CLI's `autodo say`)."""
    return desk_of(request).say(task_id, body.text, body.mode, keep=body.keep)


@router.post("/tasks/{task_id}/budget", tags=["runs"])
def set_budget(request: Request, task_id: Id, body: BudgetRequest) -> Task:
    """Give the task its own limits; a run waiting at its budget carries on."""
    return desk_of(request).set_budget(task_id, body.limits)


@router.get("/inbox", tags=["inbox"])
def inbox(request: Request) -> list[InboxItem]:
    """Every pending question, approval, hand-off, review and budget request, oldest first."""
    return desk_of(request).inbox()


@router.get("/inbox/{item_id}", tags=["inbox"])
def inbox_item(request: Request, item_id: Id) -> InboxItem:
    return desk_of(request).item(item_id)


@router.post("/inbox/{item_id}/answer", tags=["inbox"])
def answer(request: Request, item_id: Id, body: AnswerRequest) -> InboxItem:
    """Answer a question (a hand-off or review: mark it done); the waiting run resumes."""
    return desk_of(request).answer(item_id, body.text)


@router.post("/inbox/{item_id}/approve", tags=["inbox"])
def approve(request: Request, item_id: Id, body: ApproveRequest | None = None) -> InboxItem:
    return desk_of(request).approve(item_id, for_run=bool(body and body.for_run))


@router.post("/inbox/{item_id}/deny", tags=["inbox"])
def deny(request: Request, item_id: Id, body: DenyRequest) -> InboxItem:
    return desk_of(request).deny(item_id, body.reason)
