"""DBOS steps: everything a run does outside its own memory goes through one of these.

A step's result is journaled, so a workflow replayed after a crash gets the recorded
result instead of doing the work again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from dbos import DBOS

from autodo.approvals import store as approvals
from autodo.errors import AutodoError
from autodo.events import append_event
from autodo.inbox.model import ItemKind, ItemState
from autodo.inbox.store import get_item, open_item
from autodo.policy import audit, egress
from autodo.policy.redaction import scrub
from autodo.policy.sandbox import SandboxMode, sandbox_for
from autodo.policy.secrets import read_secrets, resolve_handles, secrets_file
from autodo.runs import runtime, signals
from autodo.runs.budget import Spent, effective, exceeded
from autodo.runs.ledger import execute_once, record_once
from autodo.runs.model import RunState
from autodo.runs.prompt import build_prompt
from autodo.runs.store import end_run, get_run, set_live_state, update_run
from autodo.steering.store import claim_messages, drop_unread
from autodo.store import now, seconds_since
from autodo.tasks.board import add_task, enter_lane, finish_task, get_task, set_state
from autodo.tasks.model import Lane, NewTask, State
from autodo.tools import files, shell


@DBOS.step(name="autodo.start_run")
async def start_run(run_id: str) -> dict[str, Any]:
    """Mark the run and its task running; returns what the workflow needs to drive the agent."""
    rt = runtime.current()
    with rt.engine.begin() as conn:
        run = get_run(conn, run_id)
        set_live_state(conn, run_id, RunState.RUNNING, worker=rt.worker_id, started_at=now())
        append_event(conn, run.task_id, "run.started", {"worker": rt.worker_id}, run_id=run_id)
        return {"task_id": run.task_id, "profile": run.profile}


@DBOS.step(name="autodo.side_effect")
async def side_effect(
    key: str, run_id: str, workspace: str, tool: str, arguments: dict[str, Any], timeout: float, profile: str
) -> str:
    """Write, edit or run a command in the workspace (commands in the profile's sandbox), at most once per call."""
    rt = runtime.current()
    sandbox_setting = rt.profile(profile).sandbox

    signal = signals.signal_for(run_id)
    stop = signal.stop if signal is not None else None

    async def act() -> str:
        return await anyio.to_thread.run_sync(
            _perform, Path(workspace), tool, arguments, timeout, stop, sandbox_setting
        )

    return await execute_once(rt.engine, key, run_id, tool, arguments, act)


def _perform(
    workspace: Path, tool: str, arguments: dict[str, Any], timeout: float, stop: Any, sandbox: SandboxMode
) -> str:
    try:
        if tool == "write_file":
            return files.write_file(workspace, arguments["path"], arguments["content"])
        if tool == "edit_file":
            return files.edit_file(workspace, **arguments)
        confined = sandbox_for(sandbox)  # refuses, with the reason, when no sandbox tier works here
        return shell.run_command(workspace, arguments["argv"], timeout=timeout, stop=stop, sandbox=confined).render()
    except AutodoError as error:
        return f"error: {error.message}"


@DBOS.step(name="autodo.http_request")
async def http_request(key: str, run_id: str, task_id: str, arguments: dict[str, Any], profile: str) -> str:
    """Send the agent's HTTP request through egress, at most once per call; secrets go in only here."""
    rt = runtime.current()
    call = _HttpCall(rt.engine, rt.settings.home, key, run_id, task_id, profile, rt.profile(profile).network)

    async def act() -> str:
        return await anyio.to_thread.run_sync(call.send, arguments)

    return await execute_once(rt.engine, key, run_id, "http_request", arguments, act)


@dataclass(frozen=True)
class _HttpCall:
    engine: sa.Engine
    home: Path
    key: str
    run_id: str
    task_id: str
    profile: str
    rules: list[egress.HttpAllow]

    def send(self, arguments: dict[str, Any]) -> str:
        """The response as the model reads it, scrubbed of every secret value before it is stored."""
        parts = {name: arguments.get(name) for name in ("url", "headers", "body")}
        try:
            resolved = resolve_handles(parts, read_secrets(secrets_file(self.home)))
        except AutodoError as error:
            return f"error: {error.message}"
        values = resolved.value
        method = str(arguments["method"]).upper()
        request = egress.Request(method, values["url"], values["headers"] or {}, values["body"])
        fetched = egress.fetch(request, self.rules, profile=self.profile, resolver=RESOLVER)
        self._audit(fetched, request.method, sorted(resolved.used))
        return scrub(fetched.text)

    def _audit(self, fetched: egress.Fetched, method: str, secrets: list[str]) -> None:
        """One egress record per hop, by host and handle: never a header value or a query string."""
        hops = fetched.hops or [egress.Hop(method, "", "", None, None, 0, scrub(fetched.text))]
        with self.engine.begin() as conn:
            for number, hop in enumerate(hops):
                details = {
                    "method": hop.method, "path": hop.path, "address": hop.address, "status": hop.status,
                    "bytes": hop.bytes, "secrets": secrets, "refused": hop.refused,
                }  # fmt: skip
                audit.record(
                    conn, "egress", actor=f"agent:{self.profile}", task_id=self.task_id, run_id=self.run_id,
                    agent=self.profile, tool="http_request", decision="deny" if hop.refused else "allow",
                    target=hop.host or None, details=details, key=f"egress:{self.key}:{number}",
                )  # fmt: skip


RESOLVER: egress.Resolver = egress.system_resolver  # the seam in-process tests replace


@DBOS.step(name="autodo.open_question")
async def open_question(key: str, run_id: str, task_id: str, question: str, context: dict[str, Any]) -> str:
    """Put the agent's question in the inbox and mark the task waiting; returns the item id."""
    with runtime.current().engine.begin() as conn:
        item = open_item(
            conn, task_id=task_id, kind=ItemKind.QUESTION, prompt=question, key=key, run_id=run_id, context=context
        )
        if item.state is ItemState.PENDING:
            set_live_state(conn, run_id, RunState.WAITING)
        return item.id


@DBOS.step(name="autodo.read_answer")
async def read_answer(item_id: str) -> str | None:
    """The answer if the item was answered (the fallback when a message to the run was lost).

    An approval request nobody decided in time is answered "expired" here.
    """
    with runtime.current().engine.begin() as conn:
        item = get_item(conn, item_id)
        if item.kind is ItemKind.APPROVAL and item.state is ItemState.PENDING:
            approvals.expire_if_due(conn, item_id)
            item = get_item(conn, item_id)
    return item.answer if item.state is ItemState.ANSWERED else None


@DBOS.step(name="autodo.resume_run")
async def resume_run(run_id: str, task_id: str, answer: str, item_id: str) -> None:
    """The person answered: the run works again, and the wait does not count as working time."""
    with runtime.current().engine.begin() as conn:
        waited = seconds_since(get_item(conn, item_id).created_at)
        run = get_run(conn, run_id)
        update_run(conn, run_id, waited_seconds=run.waited_seconds + waited)
        set_live_state(conn, run_id, RunState.RUNNING)
        append_event(conn, task_id, "run.resumed", {"answer": answer}, run_id=run_id)


@DBOS.step(name="autodo.checkpoint")
async def checkpoint(
    run_id: str, task_id: str, usage: dict[str, Any], spent: dict[str, Any], final: bool
) -> dict[str, Any]:
    """Between turns: record usage, take the person's messages, and say if a budget limit is reached."""
    rt = runtime.current()
    with rt.engine.begin() as conn:
        update_run(conn, run_id, **usage)
        messages = claim_messages(conn, run_id, task_id)
        over = None if final else _over_budget(conn, run_id, task_id, spent)
    return {"messages": [message.model_dump(mode="json") for message in messages], "over": over}


def _over_budget(conn: sa.Connection, run_id: str, task_id: str, spent: dict[str, Any]) -> str | None:
    run = get_run(conn, run_id)
    budget = effective(runtime.current().profile(run.profile).budget, get_task(conn, task_id).budget)
    worked = seconds_since(run.started_at or run.created_at) - run.waited_seconds
    return exceeded(budget, Spent(**spent, minutes=worked / 60))


@DBOS.step(name="autodo.open_budget_item")
async def open_budget_item(run_id: str, task_id: str, over: str) -> str:
    """Ask the person to raise the budget or stop; the run waits meanwhile."""
    prompt = f"The run reached its budget ({over}). Answer with new limits (e.g. turns=80 usd=5) or 'stop'."
    with runtime.current().engine.begin() as conn:
        key = f"{run_id}:budget:{get_run(conn, run_id).requests}:{over}"
        item = open_item(conn, task_id=task_id, kind=ItemKind.BUDGET, prompt=prompt, key=key, run_id=run_id)
        if item.state is ItemState.PENDING:
            set_live_state(conn, run_id, RunState.WAITING)
            append_event(conn, task_id, "budget.reached", {"over": over, "item_id": item.id}, run_id=run_id)
        return item.id


@DBOS.step(name="autodo.request_approval")
async def request_approval(
    key: str, run_id: str, task_id: str, tool: str, arguments: dict[str, Any], rule: str, expires_after: float
) -> str | None:
    """Hold the call for the person; None when "allow for this run" already covers it."""
    with runtime.current().engine.begin() as conn:
        item_id = approvals.request_approval(
            conn, key=key, run_id=run_id, task_id=task_id, tool=tool, arguments=arguments, rule=rule,
            expires_after=expires_after,
        )  # fmt: skip
        if item_id is not None and get_item(conn, item_id).state is ItemState.PENDING:
            set_live_state(conn, run_id, RunState.WAITING)
        return item_id


@DBOS.step(name="autodo.approval_outcome")
async def approval_outcome(
    item_id: str, run_id: str, task_id: str, key: str, tool: str, arguments: dict[str, Any]
) -> str | None:
    """Use the decision for exactly this call (None: go ahead), and let the run work again."""
    with runtime.current().engine.begin() as conn:
        refusal = approvals.consume(conn, item_id, run_id=run_id, call_key=key, tool=tool, arguments=arguments)
        waited = seconds_since(get_item(conn, item_id).created_at)
        run = get_run(conn, run_id)
        update_run(conn, run_id, waited_seconds=run.waited_seconds + waited)
        set_live_state(conn, run_id, RunState.RUNNING)
        data = {"item_id": item_id, "tool": tool, "allowed": refusal is None, "why": refusal}
        append_event(conn, task_id, "approval.used" if refusal is None else "approval.refused", data, run_id=run_id)
        return refusal


@DBOS.step(name="autodo.add_subtask")
async def add_subtask(key: str, run_id: str, parent_id: str, title: str, body: str) -> str:
    """Create a subtask exactly once per tool call."""
    with runtime.current().engine.begin() as conn:

        def create() -> str:
            task = add_task(conn, NewTask(title=title, body=body, parent_id=parent_id, source="agent"))
            return f"added subtask {task.id}: {task.title}"

        try:
            return record_once(conn, key, run_id, "add_subtask", {"title": title, "body": body}, create)
        except AutodoError as error:
            return f"error: {error.message}"


@DBOS.step(name="autodo.complete_run")
async def complete_run(run_id: str, outcome: dict[str, str]) -> None:
    """Settle the task after the agent stopped: done, review, handed over, or failed."""
    rt = runtime.current()
    with rt.engine.begin() as conn:
        run = get_run(conn, run_id)
        task = get_task(conn, run.task_id)
        drop_unread(conn, run_id, run.task_id)
        if task.state in (State.CANCELLED, State.DONE):
            return  # the person settled it while the agent worked
        _settle(conn, run_id, run.task_id, outcome, review=rt.profile(run.profile).review)


def _settle(conn: sa.Connection, run_id: str, task_id: str, outcome: dict[str, str], *, review: bool) -> None:
    kind, text = outcome["kind"], outcome["text"]
    if kind == "stopped":
        end_run(conn, run_id, RunState.CANCELLED, summary=None, error=text)
        finish_task(conn, task_id, State.CANCELLED, text)
        return
    if kind == "failed":
        end_run(conn, run_id, RunState.FAILED, summary=None, error=text)
        finish_task(conn, task_id, State.FAILED, text)
        return
    end_run(conn, run_id, RunState.SUCCEEDED, summary=text, error=None)
    append_event(conn, task_id, "run.finished", {"kind": kind, "text": text}, run_id=run_id)
    if kind == "handoff":
        enter_lane(conn, task_id, Lane.HUMAN, reason=text, set_by="agent")
    elif review:
        set_state(conn, task_id, State.REVIEW, result=text)
        open_item(conn, task_id=task_id, kind=ItemKind.REVIEW, prompt=text, key=f"{run_id}:review", run_id=run_id)
    else:
        finish_task(conn, task_id, State.DONE, text)


@DBOS.step(name="autodo.task_prompt")
async def task_prompt(task_id: str) -> str:
    with runtime.current().engine.connect() as conn:
        return build_prompt(conn, get_task(conn, task_id))
