"""The durable run: one DBOS workflow per attempt of a profile on a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbos import DBOS
from pydantic_ai import Agent
from pydantic_ai.exceptions import AgentRunError, UsageLimitExceeded
from pydantic_ai.messages import ModelRequest, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.usage import RunUsage, UsageLimits

from autodo.events import append_event
from autodo.runs import runtime, steps
from autodo.runs.failures import describe_failure
from autodo.runs.model import Finish, HandOff, RunDeps

EVENT_TEXT_LIMIT = 4000


@DBOS.workflow(name="autodo.run_task")
async def run_task(run_id: str) -> str:
    """Drive the profile's agent on the task until it finishes, hands over, or fails."""
    started = await steps.start_run(run_id)
    rt = runtime.current()
    profile = rt.profile(started["profile"])
    workspace = rt.settings.workspaces_dir / started["task_id"]
    Path(workspace).mkdir(parents=True, exist_ok=True)
    deps = RunDeps(run_id, started["task_id"], str(workspace), profile.command_timeout)
    limits = UsageLimits(request_limit=profile.budget.turns, total_tokens_limit=profile.budget.tokens)
    try:
        outcome = await _drive(rt.agents[profile.name], deps, limits)
    except UsageLimitExceeded as error:
        outcome = {"kind": "failed", "text": f"budget exhausted: {error}; raise the profile's budget and retry"}
    except AgentRunError as error:
        outcome = {"kind": "failed", "text": describe_failure(error)}
    await steps.complete_run(run_id, outcome)
    return outcome["kind"]


async def _drive(agent: Agent[RunDeps, Any], deps: RunDeps, limits: UsageLimits) -> dict[str, str]:
    recorder = _Recorder(deps)
    prompt = await steps.task_prompt(deps.task_id)
    async with agent.iter(prompt, deps=deps, usage_limits=limits) as run:
        async for node in run:
            if Agent.is_call_tools_node(node):
                recorder.model_turn(node.model_response)
                await steps.record_usage(deps.run_id, _usage_columns(run.usage))
            elif Agent.is_model_request_node(node):
                recorder.tool_results(node.request)
    assert run.result is not None
    return _outcome(run.result.output)


def _outcome(output: Any) -> dict[str, str]:
    if isinstance(output, HandOff):
        return {"kind": "handoff", "text": output.reason}
    if isinstance(output, Finish):
        return {"kind": "done", "text": output.summary}
    return {"kind": "done", "text": str(output)}


def _usage_columns(usage: RunUsage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "tool_calls": usage.tool_calls,
    }


class _Recorder:
    """Appends the transcript to the event log; keys make replayed appends no-ops."""

    def __init__(self, deps: RunDeps) -> None:
        self.deps = deps
        self.seq = 0

    def _append(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        key = f"{self.deps.run_id}:transcript:{self.seq}"
        with runtime.current().engine.begin() as conn:
            append_event(conn, self.deps.task_id, kind, data, run_id=self.deps.run_id, key=key)

    def model_turn(self, response: ModelResponse) -> None:
        text = "".join(part.content for part in response.parts if isinstance(part, TextPart))
        calls = [
            {"tool": part.tool_name, "args": _clip(part.args_as_json_str()), "id": part.tool_call_id}
            for part in response.parts
            if isinstance(part, ToolCallPart)
        ]
        usage = {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens}
        self._append("agent.turn", {"text": _clip(text), "tool_calls": calls, "usage": usage})

    def tool_results(self, request: ModelRequest) -> None:
        for part in request.parts:
            if isinstance(part, ToolReturnPart):
                data = {"tool": part.tool_name, "result": _clip(part.model_response_str()), "id": part.tool_call_id}
                self._append("tool.result", data)
            elif isinstance(part, RetryPromptPart):
                self._append("tool.retry", {"tool": part.tool_name, "message": _clip(part.model_response())})


def _clip(text: str) -> str:
    return text if len(text) <= EVENT_TEXT_LIMIT else text[:EVENT_TEXT_LIMIT] + f"… [{len(text)} chars]"
