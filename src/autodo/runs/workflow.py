"""The durable run: one DBOS workflow per attempt of a profile on a task.

The agent loop may restart inside one run: after an interrupt (the cut-short turn is dropped
and the conversation continues with the person's message) and when a message arrives as the
agent finishes. Everything that decides the path is a journaled step, so a replay follows it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS
from pydantic_ai import Agent
from pydantic_ai.exceptions import AgentRunError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.run import AgentRun
from pydantic_ai.usage import RunUsage, UsageLimits

from autodo.agents.profiles import Profile
from autodo.events import append_event
from autodo.policy import audit
from autodo.runs import runtime, signals, steps
from autodo.runs.budget import turn_cost
from autodo.runs.failures import describe_failure
from autodo.runs.model import Finish, HandOff, RunDeps
from autodo.steering.model import Message, Mode

EVENT_TEXT_LIMIT = 4000


@DBOS.workflow(name="autodo.run_task")
async def run_task(run_id: str) -> str:
    """Drive the profile's agent on the task until it finishes, hands over, stops or fails."""
    started = await steps.start_run(run_id)
    rt = runtime.current()
    profile = rt.profile(started["profile"])
    workspace = rt.settings.workspaces_dir / started["task_id"]
    Path(workspace).mkdir(parents=True, exist_ok=True)
    deps = RunDeps(run_id, started["task_id"], str(workspace), profile.command_timeout, profile.name)
    signal = signals.register(run_id)
    try:
        outcome = await _Conversation(rt.agents[profile.name], deps, profile).drive()
    except AgentRunError as error:
        outcome = {"kind": "failed", "text": describe_failure(error)}
    finally:
        signals.unregister(run_id, signal)
    await steps.complete_run(run_id, outcome)
    return outcome["kind"]


@dataclass
class _Conversation:
    agent: Agent[RunDeps, Any]
    deps: RunDeps
    profile: Profile
    usage: RunUsage = field(default_factory=RunUsage)  # of earlier legs of this run
    cost: float | None = 0.0
    recorder: _Recorder = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = _Recorder(self.deps)

    async def drive(self) -> dict[str, str]:
        prompt: str | None = await steps.task_prompt(self.deps.task_id)
        history: list[ModelMessage] | None = None
        while True:
            async with self.agent.iter(
                prompt, deps=self.deps, message_history=history, usage_limits=UsageLimits(request_limit=None)
            ) as run:
                try:
                    stop = await self._leg(run)
                except signals.Interrupted as interrupt:
                    # The cut-short turn never happened; the person's message leads the next one.
                    self.recorder.append("run.interrupted", {"reason": interrupt.reason})
                    self.usage = self.usage + run.usage
                    history, prompt = run.all_messages(), None
                    _clear_signal(self.deps.run_id)
                    continue
            if stop is not None:
                return stop
            self.usage = self.usage + run.usage
            arrived = await self._checkpoint(None, final=True)
            if not arrived["messages"]:
                assert run.result is not None
                return _outcome(run.result.output)
            # Messages that came as the agent finished: it reads them and carries on.
            history, prompt = run.all_messages(), "\n\n".join(m.as_prompt() for m in arrived["messages"])

    async def _leg(self, run: AgentRun[RunDeps, Any]) -> dict[str, str] | None:
        async for node in run:
            if Agent.is_model_request_node(node):
                self.recorder.tool_results(node.request)
                arrived = await self._checkpoint(run, final=False)
                stop: dict[str, str] | None = arrived["stop"]
                if stop is not None:
                    return stop
                for message in arrived["messages"]:
                    run.enqueue(message.as_prompt(), priority="when_idle" if message.mode is Mode.QUEUE else "asap")
            elif Agent.is_call_tools_node(node):
                self.recorder.model_turn(node.model_response)
                self._add_cost(node.model_response)
        return None

    async def _checkpoint(self, run: AgentRun[RunDeps, Any] | None, *, final: bool) -> dict[str, Any]:
        """Before each model request: record usage, take the person's messages, check the budget.

        The final checkpoint, as the agent finishes, only looks for messages: a finished agent
        has nothing left to spend.
        """
        usage = self.usage + run.usage if run is not None else self.usage
        spent = {"turns": usage.requests, "tokens": usage.input_tokens + usage.output_tokens, "usd": self.cost}
        columns = {
            "requests": usage.requests, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "tool_calls": usage.tool_calls, "cost_usd": self.cost,
        }  # fmt: skip
        result = await steps.checkpoint(self.deps.run_id, self.deps.task_id, columns, spent, final)
        messages = [Message.model_validate(m) for m in result["messages"]]
        if messages:
            _clear_signal(self.deps.run_id)  # an interrupt that raced this read is delivered now
        stop = None
        if result["over"] is not None:
            stop = await _ask_for_budget(self.deps, result["over"])
        return {"messages": messages, "stop": stop}

    def _add_cost(self, response: ModelResponse) -> None:
        if self.cost is None:
            return
        cost = turn_cost(self.profile.price, response)
        self.cost = None if cost is None else self.cost + cost


async def _ask_for_budget(deps: RunDeps, over: str) -> dict[str, str] | None:
    """Wait for the person to raise the budget (None: carry on) or stop the run (its outcome)."""
    from autodo.agents.builtin import wait_for_answer  # the agent module imports this one

    item_id = await steps.open_budget_item(deps.run_id, deps.task_id, over)
    answer = await wait_for_answer(item_id)
    await steps.resume_run(deps.run_id, deps.task_id, answer, item_id)
    if answer.strip().lower() == "stop":
        return {"kind": "stopped", "text": f"stopped at its budget ({over}) by the person; the workspace is kept"}
    return None


def _clear_signal(run_id: str) -> None:
    signal = signals.signal_for(run_id)
    if signal is not None:
        signal.clear()


def _outcome(output: Any) -> dict[str, str]:
    if isinstance(output, HandOff):
        return {"kind": "handoff", "text": output.reason}
    if isinstance(output, Finish):
        return {"kind": "done", "text": output.summary}
    return {"kind": "done", "text": str(output)}


@dataclass(frozen=True)
class _CallOutcome:
    """How one tool call ended, for the audit log."""

    tool: str
    call_id: str
    outcome: str  # "returned", or "retry" when the model is told to try again
    output: str


class _Recorder:
    """Appends the transcript to the event log and tool calls to the audit log; keys make replayed appends no-ops."""

    def __init__(self, deps: RunDeps) -> None:
        self.deps = deps
        self.seq = 0
        self.arguments: dict[str, Any] = {}  # tool call id -> the model's arguments, until the call's outcome

    def append(self, kind: str, data: dict[str, Any], call: _CallOutcome | None = None) -> None:
        self.seq += 1
        key = f"{self.deps.run_id}:transcript:{self.seq}"
        with runtime.current().engine.begin() as conn:
            append_event(conn, self.deps.task_id, kind, data, run_id=self.deps.run_id, key=key)
            if call is not None:  # in the event's transaction, under a key like its: a replay records it once
                self._audit(conn, call, f"audit:{key}")

    def _audit(self, conn: sa.Connection, call: _CallOutcome, key: str) -> None:
        output = call.output.encode("utf-8", "surrogatepass")
        details = {
            "call_id": call.call_id, "outcome": call.outcome,
            **audit.describe_arguments(self.arguments.pop(call.call_id, None)),
            "result_sha256": hashlib.sha256(output).hexdigest(), "result_chars": len(call.output),
        }  # fmt: skip
        deps = self.deps
        audit.record(
            conn, "tool.call", actor=f"agent:{deps.profile}", task_id=deps.task_id, run_id=deps.run_id,
            agent=deps.profile, tool=call.tool, details=details, key=key,
        )  # fmt: skip

    def model_turn(self, response: ModelResponse) -> None:
        self.arguments.update({p.tool_call_id: p.args for p in response.parts if isinstance(p, ToolCallPart)})
        text = "".join(part.content for part in response.parts if isinstance(part, TextPart))
        calls = [
            {"tool": part.tool_name, "args": _clip(part.args_as_json_str()), "id": part.tool_call_id}
            for part in response.parts
            if isinstance(part, ToolCallPart)
        ]
        usage = {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens}
        self.append("agent.turn", {"text": _clip(text), "tool_calls": calls, "usage": usage})

    def tool_results(self, request: ModelRequest) -> None:
        for part in request.parts:
            if isinstance(part, ToolReturnPart):
                result = part.model_response_str()
                data = {"tool": part.tool_name, "result": _clip(result), "id": part.tool_call_id}
                self.append("tool.result", data, _CallOutcome(part.tool_name, part.tool_call_id, "returned", result))
            elif isinstance(part, RetryPromptPart):
                message = part.model_response()
                call = _CallOutcome(part.tool_name, part.tool_call_id, "retry", message) if part.tool_name else None
                self.append("tool.retry", {"tool": part.tool_name, "message": _clip(message)}, call)


def _clip(text: str) -> str:
    return text if len(text) <= EVENT_TEXT_LIMIT else text[:EVENT_TEXT_LIMIT] + f"… [{len(text)} chars]"
