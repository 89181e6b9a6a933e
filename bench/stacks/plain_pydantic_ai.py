"""Plain pydantic-ai, no durability: the floor autodo's durable runs are compared with."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent, RunContext, ToolOutput
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from bench.common import FINISH_TOOL, BenchError, Workload, check_workspaces
from bench.stacks import INSTRUCTIONS, StackRun, task_prompt

STACK = "pydantic-ai"


class Finish(BaseModel):
    """The agent is done."""

    summary: str


async def write_file(ctx: RunContext[Path], path: str, content: str) -> str:
    """Create or overwrite a file in the workspace."""
    (ctx.deps / path).write_text(content)
    return f"wrote {len(content)} characters to {path}"


def build_agent(client: AsyncOpenAI) -> Agent[Path, Finish]:
    model = OpenAIChatModel("stub-agent", provider=OpenAIProvider(openai_client=client))
    finish = ToolOutput(Finish, name=FINISH_TOOL, description="Call when the task is done.")
    return Agent(model, deps_type=Path, output_type=finish, instructions=INSTRUCTIONS, tools=[write_file])


def measure(workload: Workload, stub_url: str, scratch: Path) -> StackRun:
    workspaces = [scratch / "workspaces" / f"task-{n}" for n in range(workload.tasks)]
    for workspace in workspaces:
        workspace.mkdir(parents=True)
    makespan, cpu = anyio.run(_work_all, workload, stub_url, workspaces)
    check_workspaces(STACK, workspaces, workload)
    return StackRun(makespan, cpu)


async def _work_all(workload: Workload, stub_url: str, workspaces: list[Path]) -> tuple[float, float]:
    async with AsyncOpenAI(base_url=stub_url, api_key="not-needed") as client:
        agent = build_agent(client)
        agents = anyio.CapacityLimiter(workload.agents)
        started, cpu = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as group:
            for n, workspace in enumerate(workspaces):
                group.start_soon(_work_one, agent, agents, task_prompt(workload, n), workspace)
        return time.perf_counter() - started, time.process_time() - cpu


async def _work_one(agent: Agent[Path, Finish], agents: anyio.CapacityLimiter, prompt: str, workspace: Path) -> None:
    async with agents:
        result = await agent.run(prompt, deps=workspace)
    if not isinstance(result.output, Finish):
        raise BenchError(f"{STACK}: a run ended with {result.output!r} instead of a finish call")
