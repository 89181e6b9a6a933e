"""The manager's desk: the service functions every surface (CLI, API, MCP) calls."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel

from autodo.agents.choice import default_model
from autodo.agents.profiles import ProfileFile, get_profile, load_profiles
from autodo.approvals import store as approvals
from autodo.config import Settings
from autodo.errors import Conflict, InvalidInput
from autodo.events import Event, append_event, last_event_at, recent_events
from autodo.inbox.model import InboxItem, ItemKind, ItemState
from autodo.inbox.store import close_item, get_item, pending_items
from autodo.overview import Card, Team, card, cards, team
from autodo.runs.budget import parse_budget
from autodo.runs.model import LIVE_RUN_STATES, Run, RunState
from autodo.runs.store import active_run, end_run, get_run, pause_run, runs_of, update_run, usage_totals
from autodo.steering.model import Message, Mode
from autodo.steering.store import add_message, mark_delivered
from autodo.store import now, open_store, seconds_since
from autodo.store.schema import tasks as tasks_table
from autodo.tasks import board
from autodo.tasks.dependencies import add_blockers
from autodo.tasks.model import COLUMNS, TERMINAL, Lane, NewTask, State, Task, profile_from_labels
from autodo.workspaces.changes import WorkspaceChanges, workspace_changes

if TYPE_CHECKING:
    from autodo.runs.control import RunControl

MAX_ANSWER = 20_000
MAX_MESSAGE = 20_000


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
        profile = request.profile or profile_from_labels(request.labels)
        if profile is not None:
            get_profile(self.profiles, profile)
        with self.engine.begin() as conn:
            return board.add_task(conn, request)

    def tasks(self, states: list[State] | None = None, lane: Lane | None = None) -> list[Task]:
        with self.engine.connect() as conn:
            return board.list_tasks(conn, states, lane)

    def task(self, task_id: str) -> TaskDetail:
        with self.engine.connect() as conn:
            task = board.get_task(conn, task_id)
            runs, items = runs_of(conn, task_id), pending_items(conn, task_id)
        return TaskDetail(task=task, runs=runs, inbox=items, events=recent_events(self.engine, task_id))

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
        """Cancel a task and stop its run (a command in flight is killed); the workspace stays as it is."""
        with self.engine.connect() as conn:
            task = board.get_task(conn, task_id)
            run = active_run(conn, task_id)
        if task.state in TERMINAL:
            raise Conflict(f"task {task_id} is already {task.state.value}")
        if run is not None:
            self._run_control().cancel(run.id)  # first, so the run takes no further step
        with self.engine.begin() as conn:
            if run is not None:
                end_run(conn, run.id, RunState.CANCELLED, summary=None, error="cancelled by the person")
            board.finish_task(conn, task_id, State.CANCELLED, "cancelled by the person")
            return board.get_task(conn, task_id)

    def pause(self, task_id: str) -> Task:
        """Stop the task's run where it is (a turn or command in flight is cut short) until resumed."""
        with self.engine.connect() as conn:
            run = active_run(conn, task_id)
        if run is None or run.state is RunState.PAUSED:
            state = "already paused" if run else "not running"
            raise Conflict(f"task {task_id} is {state}; `autodo ls` shows what runs")
        self._run_control().cancel(run.id)  # DBOS stops the workflow at its next step
        with self.engine.begin() as conn:
            if not pause_run(conn, run.id, run.state):
                raise Conflict(
                    f"the run of task {task_id} changed meanwhile ({get_run(conn, run.id).state}); try again"
                )
            board.set_state(conn, task_id, State.PAUSED)
            append_event(conn, task_id, "run.paused", {"by": "person"}, run_id=run.id)
            return board.get_task(conn, task_id)

    def resume(self, task_id: str) -> Task:
        """Continue a paused run from its last completed step, on its profile's queue."""
        with self.engine.begin() as conn:
            run = active_run(conn, task_id)
            if run is None or run.state is not RunState.PAUSED:
                raise Conflict(f"task {task_id} is not paused; `autodo pause {task_id}` pauses a running task")
            waiting = any(item.run_id == run.id for item in pending_items(conn, task_id))
            paused = seconds_since(last_event_at(conn, run.id, "run.paused") or now())
            state = (RunState.WAITING if waiting else RunState.RUNNING).value
            update_run(conn, run.id, state=state, waited_seconds=run.waited_seconds + paused)  # not working time
            board.set_state(conn, task_id, State.WAITING if waiting else State.RUNNING)
            append_event(conn, task_id, "run.resumed", {"by": "person"}, run_id=run.id)
        self._run_control().resume(run.id, run.profile)
        with self.engine.connect() as conn:
            return board.get_task(conn, task_id)

    def say(self, task_id: str, text: str, mode: Mode = Mode.STEER, *, keep: bool = False, by: str = "you") -> Message:
        """Tell a running agent something; with ``keep``, a task that is not running gets it on its next run."""
        text = text.strip()
        if not text:
            raise InvalidInput("the message is empty; say what the agent should know or do differently")
        if len(text) > MAX_MESSAGE:
            raise InvalidInput(f"the message is {len(text)} characters; the limit is {MAX_MESSAGE}")
        with self.engine.begin() as conn:
            task = board.get_task(conn, task_id)
            run = active_run(conn, task_id)
            if run is None or run.state.value not in LIVE_RUN_STATES:
                if not keep or task.state in TERMINAL:
                    raise Conflict(_not_running(task, run))
                return add_message(conn, task_id, None, mode, text, by)
            message = add_message(conn, task_id, run.id, mode, text, by)
            answered = self._interrupt_wait(conn, message) if mode is Mode.INTERRUPT else None
        if answered is not None:
            self._run_control().deliver_answer(run.id, answered.id, answered.answer or "")
        return message

    def _interrupt_wait(self, conn: sa.Connection, message: Message) -> InboxItem | None:
        """An interrupt to a run waiting on the person answers that wait with the message."""
        waits = [i for i in pending_items(conn, message.task_id) if i.run_id == message.run_id]
        for item in waits:
            if item.kind is ItemKind.QUESTION:
                answer = f"(the person interrupted instead of answering) {message.body}"
                item = close_item(conn, item.id, answer, message.author)
            elif item.kind is ItemKind.APPROVAL:
                item = approvals.decide(conn, item.id, approve=False, by=message.author, reason=message.body)
            else:
                continue
            mark_delivered(conn, message.id)
            return item
        return None

    def inbox(self) -> list[InboxItem]:
        with self.engine.connect() as conn:
            return pending_items(conn)

    def answer(self, item_id: str, text: str, by: str = "person") -> InboxItem:
        """Answer an inbox item; exactly one answer wins, and a waiting run resumes."""
        text = text.strip()
        if not text:
            raise InvalidInput("the answer is empty; say what the agent should know")
        with self.engine.begin() as conn:
            kind = get_item(conn, item_id).kind
            if kind is ItemKind.APPROVAL:
                raise InvalidInput(
                    f"{item_id} asks for approval: `autodo approve {item_id}` or `autodo deny {item_id}`"
                )
            if kind is ItemKind.BUDGET:
                text = self._budget_answer(conn, item_id, text)
            item = close_item(conn, item_id, text[:MAX_ANSWER], by)
            self._after_answer(conn, item)
        self._wake(item)
        return item

    def _budget_answer(self, conn: sa.Connection, item_id: str, text: str) -> str:
        """ "stop", or new limits that become the task's own budget."""
        if text.lower() == "stop":
            return "stop"
        item = get_item(conn, item_id)
        self._store_budget(conn, item.task_id, parse_budget(text))
        return f"raised: {text}"

    def _after_answer(self, conn: sa.Connection, item: InboxItem) -> None:
        if item.kind is ItemKind.QUESTION and item.run_id is None:
            board.add_context(conn, item.task_id, f"Q: {item.prompt}\nA: {item.answer}")
            board.enter_lane(conn, item.task_id, Lane.AGENT, reason="the person answered", set_by="person")
        elif item.kind in (ItemKind.HANDOFF, ItemKind.REVIEW):
            board.finish_task(conn, item.task_id, State.DONE, item.answer)

    def approve(self, item_id: str, *, for_run: bool = False, by: str = "you") -> InboxItem:
        """Allow the exact call an approval item shows (or, ``for_run``, every call its rule holds in that run)."""
        scope = approvals.Scope.RUN if for_run else approvals.Scope.CALL
        with self.engine.begin() as conn:
            _require_approval(conn, item_id)
            item = approvals.decide(conn, item_id, approve=True, by=by, scope=scope)
        self._wake(item)
        return item

    def deny(self, item_id: str, reason: str, *, by: str = "you") -> InboxItem:
        """Refuse the call; the agent reads the reason."""
        with self.engine.begin() as conn:
            _require_approval(conn, item_id)
            item = approvals.decide(conn, item_id, approve=False, by=by, reason=reason.strip())
        self._wake(item)
        return item

    def set_budget(self, task_id: str, text: str) -> Task:
        """Give a task its own limits (``turns=60 usd=2``); a run waiting at its budget carries on."""
        limits = parse_budget(text)
        with self.engine.begin() as conn:
            task = board.get_task(conn, task_id)
            self._store_budget(conn, task_id, limits)
            waiting = [i for i in pending_items(conn, task_id) if i.kind is ItemKind.BUDGET]
            items = [close_item(conn, i.id, f"raised: {text.strip()}", "person") for i in waiting]
            task = board.get_task(conn, task_id)
        for item in items:
            self._wake(item)
        return task

    def _store_budget(self, conn: sa.Connection, task_id: str, limits: dict[str, object]) -> None:
        budget = {**(board.get_task(conn, task_id).budget or {}), **limits}
        conn.execute(tasks_table.update().where(tasks_table.c.id == task_id).values(budget=budget))
        append_event(conn, task_id, "budget.set", {"budget": budget})

    def _wake(self, item: InboxItem) -> None:
        """Tell the run waiting on this item (if any) that it was answered."""
        if item.run_id is not None and item.state is ItemState.ANSWERED:
            self._run_control().deliver_answer(item.run_id, item.id, item.answer or "")

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

    def cards(self) -> list[Card]:
        """Every task as a board card: its agent, time, usage and latest activity."""
        with self.engine.connect() as conn:
            return cards(conn)

    def card(self, task_id: str) -> Card:
        """One task's board card."""
        with self.engine.connect() as conn:
            return card(conn, task_id)

    def team(self) -> Team:
        """Each profile: what its agents do now, its queue, and today's tokens and cost."""
        with self.engine.connect() as conn:
            return team(conn, self.profiles)

    def changes(self, task_id: str) -> WorkspaceChanges:
        """The files the task's agents changed in its workspace, with diffs."""
        with self.engine.connect() as conn:
            board.get_task(conn, task_id)
        return workspace_changes(self.settings.workspaces_dir / task_id)

    def _run_control(self) -> RunControl:
        # Imported here: DBOS loads only when a running workflow must be reached.
        from autodo.runs.control import RunControl

        return RunControl(self.settings, self.engine)


def _not_running(task: Task, run: Run | None) -> str:
    state = f"its run is {run.state.value}" if run is not None else f"it is {task.state.value}"
    hint = "" if task.state in TERMINAL else "; `autodo say --queue` keeps the message for its next run"
    return f"task {task.id} is not running ({state}){hint}"


def _require_approval(conn: sa.Connection, item_id: str) -> None:
    kind = get_item(conn, item_id).kind
    if kind is not ItemKind.APPROVAL:
        raise InvalidInput(f"{item_id} is a {kind.value}, not an approval; answer it with `autodo answer {item_id}`")
