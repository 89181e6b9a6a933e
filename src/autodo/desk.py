"""The manager's desk: the service functions every surface (CLI, API, MCP) calls."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel

from autodo.agents.choice import default_model
from autodo.agents.profiles import ProfileFile, get_profile, load_profiles
from autodo.config import Settings
from autodo.errors import Conflict, InvalidInput
from autodo.events import Event, list_events
from autodo.inbox.model import InboxItem, ItemKind
from autodo.inbox.store import close_item, get_item, pending_items
from autodo.runs.model import Run, RunState
from autodo.runs.store import active_run, end_run, runs_of, usage_totals
from autodo.store import open_store
from autodo.tasks import board
from autodo.tasks.dependencies import add_blockers
from autodo.tasks.model import COLUMNS, TERMINAL, Lane, NewTask, State, Task

if TYPE_CHECKING:
    from autodo.runs.control import RunControl

MAX_ANSWER = 20_000


class TaskDetail(BaseModel):
    """A task with its runs, open inbox items and transcript (`autodo show --json`)."""

    task: Task
    runs: list[Run]
    inbox: list[InboxItem]
    events: list[Event]


class BoardSummary(BaseModel):
    """What `autodo` alone prints: counts per column and what waits on the person."""

    columns: dict[str, int]
    waiting_on_you: list[InboxItem]
    model_configured: bool
    usage: dict[str, int]


class Desk:
    """One home's tasks, inbox and runs."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def engine(self) -> sa.Engine:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return open_store(self.settings.store_url)

    @cached_property
    def profiles(self) -> ProfileFile:
        return load_profiles(self.settings.profiles_path)

    @property
    def model_configured(self) -> bool:
        return bool(self.profiles.triage_model or default_model(self.settings))

    def add(self, request: NewTask) -> Task:
        if request.profile is not None:
            get_profile(self.profiles, request.profile)
        with self.engine.begin() as conn:
            return board.add_task(conn, request)

    def tasks(self, states: list[State] | None = None, lane: Lane | None = None) -> list[Task]:
        with self.engine.connect() as conn:
            return board.list_tasks(conn, states, lane)

    def task(self, task_id: str) -> TaskDetail:
        with self.engine.connect() as conn:
            task = board.get_task(conn, task_id)
            runs, items = runs_of(conn, task_id), pending_items(conn, task_id)
        return TaskDetail(task=task, runs=runs, inbox=items, events=list_events(self.engine, task_id))

    def block(self, task_id: str, blocker_ids: list[str]) -> Task:
        """Make a task wait for others (refusing cycles)."""
        with self.engine.begin() as conn:
            task = board.get_task(conn, task_id)
            add_blockers(conn, task_id, blocker_ids)
            if task.state is State.QUEUED:
                board.set_state(conn, task_id, State.BLOCKED)
            return board.get_task(conn, task_id)

    def move(self, task_id: str, lane: Lane, reason: str | None = None) -> Task:
        with self.engine.begin() as conn:
            return board.move_task(conn, task_id, lane, reason)

    def done(self, task_id: str, note: str | None = None) -> Task:
        with self.engine.begin() as conn:
            return board.mark_done(conn, task_id, note)

    def cancel(self, task_id: str) -> Task:
        """Cancel a task and stop its run; the workspace stays as it is."""
        with self.engine.begin() as conn:
            task = board.get_task(conn, task_id)
            if task.state in TERMINAL:
                raise Conflict(f"task {task_id} is already {task.state.value}")
            run = active_run(conn, task_id)
            if run is not None:
                end_run(conn, run.id, RunState.CANCELLED, summary=None, error="cancelled by the person")
            board.finish_task(conn, task_id, State.CANCELLED, "cancelled by the person")
        if run is not None:
            self._run_control().cancel(run.id)
        with self.engine.connect() as conn:
            return board.get_task(conn, task_id)

    def inbox(self) -> list[InboxItem]:
        with self.engine.connect() as conn:
            return pending_items(conn)

    def answer(self, item_id: str, text: str, by: str = "person") -> InboxItem:
        """Answer an inbox item; exactly one answer wins, and a waiting run resumes."""
        text = text.strip()
        if not text:
            raise InvalidInput("the answer is empty; say what the agent should know")
        with self.engine.begin() as conn:
            item = close_item(conn, item_id, text[:MAX_ANSWER], by)
            self._after_answer(conn, item)
        if item.kind is ItemKind.QUESTION and item.run_id is not None:
            self._run_control().deliver_answer(item.run_id, item.id, item.answer or "")
        return item

    def _after_answer(self, conn: sa.Connection, item: InboxItem) -> None:
        if item.kind is ItemKind.QUESTION and item.run_id is None:
            board.add_context(conn, item.task_id, f"Q: {item.prompt}\nA: {item.answer}")
            board.enter_lane(conn, item.task_id, Lane.AGENT, reason="the person answered", set_by="person")
        elif item.kind in (ItemKind.HANDOFF, ItemKind.REVIEW):
            board.finish_task(conn, item.task_id, State.DONE, item.answer)

    def item(self, item_id: str) -> InboxItem:
        with self.engine.connect() as conn:
            return get_item(conn, item_id)

    def summary(self) -> BoardSummary:
        tasks = self.tasks()
        columns = {name: sum(task.state in states for task in tasks) for name, states in COLUMNS.items()}
        with self.engine.connect() as conn:
            usage = usage_totals(conn)
        return BoardSummary(
            columns=columns, waiting_on_you=self.inbox(), model_configured=self.model_configured, usage=usage
        )

    def _run_control(self) -> RunControl:
        # Imported here: DBOS loads only when a running workflow must be reached.
        from autodo.runs.control import RunControl

        return RunControl(self.settings)
