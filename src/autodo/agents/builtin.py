"""The built-in agent: a pydantic-ai agent with workspace tools, durable under DBOS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbos import DBOS
from pydantic_ai import Agent, RunContext, ToolOutput
from pydantic_ai.durable_exec.dbos import DBOSDurability
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models import Model
from pydantic_ai.toolsets import FunctionToolset

from autodo.agents.profiles import Profile
from autodo.errors import AutodoError
from autodo.policy import egress
from autodo.policy.redaction import install_log_redaction, scrub
from autodo.policy.secrets import handles_in
from autodo.policy.taint import mark_untrusted, needs_approval, taint
from autodo.runs import runtime, signals, steps
from autodo.runs.ledger import INTERRUPTED
from autodo.runs.model import Finish, HandOff, RunDeps
from autodo.tasks.board import get_task
from autodo.tools import files

# A person may take days to answer; the wait is durable, and this bounds each poll of the store.
ANSWER_POLL_SECONDS = 60


def tool_key(ctx: RunContext[RunDeps]) -> str:
    """The idempotency key of one tool call: run, model turn and the provider's call id."""
    return f"{ctx.deps.run_id}:{ctx.run_step}:{ctx.tool_call_id}"


def _safely(action: Any, *args: Any) -> str:
    try:
        return _outside(str(action(*args)))
    except AutodoError as error:
        return f"error: {error.message}"


AUTODO_NOTICES = ("error: ", "not done:")


def _outside(text: str) -> str:
    """Output that carries outside content, as the model sees it: scrubbed of secrets, marked as data.

    autodo's own notices (a refusal, an interrupted call) are not outside content and stay unmarked.
    """
    if text == INTERRUPTED or text.startswith(AUTODO_NOTICES):
        return scrub(text)
    return mark_untrusted(scrub(text))


async def read_file(ctx: RunContext[RunDeps], path: str, offset: int = 0, limit: int = 2000) -> str:
    """Read a text file in the workspace, `limit` lines from line `offset`."""
    refusal = await approval(ctx, "read_file", {"path": path, "offset": offset, "limit": limit})
    return refusal or _safely(files.read_file, Path(ctx.deps.workspace), path, offset, limit)


async def list_dir(ctx: RunContext[RunDeps], path: str = ".", depth: int = 2) -> str:
    """List files and directories under a workspace path."""
    refusal = await approval(ctx, "list_dir", {"path": path, "depth": depth})
    return refusal or _safely(files.list_dir, Path(ctx.deps.workspace), path, depth)


async def search_files(ctx: RunContext[RunDeps], pattern: str, path: str = ".", glob: str | None = None) -> str:
    """Search workspace files for a regular expression; `glob` narrows the file names."""
    refusal = await approval(ctx, "search_files", {"pattern": pattern, "path": path, "glob": glob})
    return refusal or _safely(files.search_files, Path(ctx.deps.workspace), pattern, path, glob)


async def write_file(ctx: RunContext[RunDeps], path: str, content: str) -> str:
    """Create or overwrite a file in the workspace."""
    arguments = {"path": path, "content": content}
    return await _side_effect(ctx, "write_file", arguments)


async def edit_file(ctx: RunContext[RunDeps], path: str, old: str, new: str, count: int = 1) -> str:
    """Replace exact text `old` with `new` in a workspace file; `old` must occur exactly `count` times."""
    arguments = {"path": path, "old": old, "new": new, "count": count}
    return await _side_effect(ctx, "edit_file", arguments)


async def run_command(ctx: RunContext[RunDeps], argv: list[str]) -> str:
    """Run a program in the workspace, e.g. ["python3", "main.py"]; argv is a list, not a shell line."""
    result = await _side_effect(ctx, "run_command", {"argv": argv})
    return _outside(result)


async def http_request(
    ctx: RunContext[RunDeps], method: str, url: str, headers: dict[str, str] | None = None, body: str | None = None
) -> str:
    """Send an HTTP request to a destination the profile allows; write secrets as handles (`secret:NAME`)."""
    deps = ctx.deps
    profile = runtime.current().profile(deps.profile)
    arguments: dict[str, Any] = {"method": method.upper(), "url": url, "headers": headers or {}, "body": body}
    try:
        egress.check_url(profile.network, method, url, profile=profile.name)
    except egress.Refused as refused:
        return f"error: refused: {refused}"  # no point asking the person about a call egress refuses anyway
    tainted_by = taint(_task_source(deps.task_id), ctx.messages)
    held = needs_approval(profile.untrusted_input, tainted_by, method, handles_in(arguments))
    refusal = await approval(ctx, "http_request", arguments, also=held)
    if refusal is not None:
        return refusal
    return _outside(await steps.http_request(tool_key(ctx), deps.run_id, deps.task_id, arguments, deps.profile))


def _task_source(task_id: str) -> str:
    # A task's source never changes, so reading it outside a step replays the same.
    with runtime.current().engine.connect() as conn:
        return get_task(conn, task_id).source


async def _side_effect(ctx: RunContext[RunDeps], tool: str, arguments: dict[str, Any]) -> str:
    refusal = await approval(ctx, tool, arguments)
    if refusal is not None:
        return refusal
    deps = ctx.deps
    return await steps.side_effect(
        tool_key(ctx), deps.run_id, deps.workspace, tool, arguments, deps.command_timeout, deps.profile
    )


async def approval(
    ctx: RunContext[RunDeps], tool: str, arguments: dict[str, Any], also: str | None = None
) -> str | None:
    """None when the call may go ahead; otherwise why not, for the model to read.

    The profile's rules decide which calls the person must allow; ``also`` is another reason to
    hold this one (the rule of two). The request is bound to this run, this tool call and a hash
    of these exact arguments, and is used at most once.
    """
    deps = ctx.deps
    rules = runtime.current().profile(deps.profile).approvals
    rule = "; ".join(reason for reason in (rules.reason(tool, arguments), also) if reason) or None
    if rule is None:
        return None
    key = tool_key(ctx)
    item_id = await steps.request_approval(key, deps.run_id, deps.task_id, tool, arguments, rule, rules.expires_after)
    if item_id is None:
        return None  # the person allowed this rule for the whole run
    await wait_for_answer(item_id, poll_seconds=min(ANSWER_POLL_SECONDS, max(1.0, rules.expires_after / 4)))
    refusal = await steps.approval_outcome(item_id, deps.run_id, deps.task_id, key, tool, arguments)
    return None if refusal is None else f"not done: {refusal}"


async def ask_human(ctx: RunContext[RunDeps], question: str) -> str:
    """Ask the person one clear question and wait for the answer; use when only they know."""
    deps = ctx.deps
    context = {"agent_said": _last_words(ctx)}
    item_id = await steps.open_question(tool_key(ctx), deps.run_id, deps.task_id, question, context)
    answer = await wait_for_answer(item_id)
    await steps.resume_run(deps.run_id, deps.task_id, answer, item_id)
    return f"The person answered: {answer}"


def _last_words(ctx: RunContext[RunDeps]) -> str:
    """What the agent wrote alongside its question: the context the person answers in."""
    responses = [message for message in ctx.messages if isinstance(message, ModelResponse)]
    if not responses:
        return ""
    return "".join(part.content for part in responses[-1].parts if isinstance(part, TextPart))


async def wait_for_answer(item_id: str, poll_seconds: float = ANSWER_POLL_SECONDS) -> str:
    """Wait durably for the answer message; check the store too in case the message was lost."""
    while True:
        try:
            message = await _halted_by_person(DBOS.recv_async(topic=f"answer:{item_id}", timeout_seconds=poll_seconds))
        except signals.Interrupted:
            message = None  # paused or cancelled: the next step ends this execution
        if message is not None:
            return str(message)
        stored = await steps.read_answer(item_id)
        if stored is not None:
            return stored


async def _halted_by_person(wait: Any) -> Any:
    signal = signals.current()
    return await (wait if signal is None else signal.race(wait, halt_only=True))


async def add_subtask(ctx: RunContext[RunDeps], title: str, body: str = "") -> str:
    """Add a follow-up task for the team (it is worked separately, by another agent)."""
    deps = ctx.deps
    return await steps.add_subtask(tool_key(ctx), deps.run_id, deps.task_id, title, body)


TOOLS: dict[str, Any] = {
    "read_file": read_file, "write_file": write_file, "edit_file": edit_file, "list_dir": list_dir,
    "search_files": search_files, "run_command": run_command, "ask_human": ask_human, "add_subtask": add_subtask,
    "http_request": http_request,
}  # fmt: skip


def build_agent(profile: Profile, model: Model) -> Agent[RunDeps, Any]:
    """The agent for one profile, with only the tools the profile grants."""
    install_log_redaction()  # the worker builds its agents at launch: from then on its logs are scrubbed
    toolset = FunctionToolset[RunDeps]([TOOLS[name] for name in profile.tools if name in TOOLS])
    outputs: list[Any] = [ToolOutput(Finish, name="finish", description="Call when the task is done.")]
    if "hand_to_human" in profile.tools:
        description = "Call when only the person can do what remains (sign, pay, decide, log in)."
        outputs.append(ToolOutput(HandOff, name="hand_to_human", description=description))
    outputs.append(str)
    return Agent(
        model,
        name=f"autodo_{profile.name}",
        deps_type=RunDeps,
        output_type=outputs,
        instructions=profile.instructions,
        toolsets=[toolset],
        retries=3,
        capabilities=[DBOSDurability(parallel_execution_mode="sequential")],
    )
