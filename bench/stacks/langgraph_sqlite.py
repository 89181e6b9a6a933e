"""LangGraph with its SQLite checkpointer: the durable peer.

The async saver (``AsyncSqliteSaver``, one aiosqlite connection) checkpoints every super-step with
``durability="sync"``: a step's checkpoint is written before the next step starts, which is the
promise autodo's DBOS journal makes too (LangGraph's default, ``"async"``, writes it meanwhile).
"""

from __future__ import annotations

import json
import operator
import time
from pathlib import Path
from typing import Annotated, Any, Final, TypedDict

import anyio
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionToolParam

from bench.common import FILE_TOOL, FINISH_TOOL, BenchError, Workload, check_workspaces
from bench.stacks import INSTRUCTIONS, StackRun, task_prompt

STACK = "langgraph"
DURABILITY: Final = "sync"

TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": FILE_TOOL,
            "description": "Create or overwrite a file in the workspace.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": FINISH_TOOL,
            "description": "Call when the task is done.",
            "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
        },
    },
]


class AgentState(TypedDict):
    messages: Annotated[list[dict[str, Any]], operator.add]  # OpenAI wire-format messages, appended per step
    workspace: str


Graph = CompiledStateGraph[AgentState, None, AgentState, AgentState]


def build_graph(client: AsyncOpenAI, saver: AsyncSqliteSaver) -> Graph:
    """Model node, then the tools node while the model calls tools, until it calls finish."""

    async def call_model(state: AgentState) -> dict[str, Any]:
        reply = await client.chat.completions.create(model="stub-agent", messages=state["messages"], tools=TOOLS)  # type: ignore[arg-type]
        return {"messages": [reply.choices[0].message.model_dump(exclude_none=True)]}

    graph = StateGraph(AgentState)
    graph.add_node("model", call_model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", next_step, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=saver)


def next_step(state: AgentState) -> str:
    calls = state["messages"][-1].get("tool_calls") or []
    return "tools" if calls and all(call["function"]["name"] != FINISH_TOOL for call in calls) else END


def run_tools(state: AgentState) -> dict[str, Any]:
    results = []
    for call in state["messages"][-1]["tool_calls"]:
        arguments = json.loads(call["function"]["arguments"])
        (Path(state["workspace"]) / arguments["path"]).write_text(arguments["content"])
        results.append({"role": "tool", "tool_call_id": call["id"], "content": f"wrote {arguments['path']}"})
    return {"messages": results}


def measure(workload: Workload, stub_url: str, scratch: Path) -> StackRun:
    workspaces = [scratch / "workspaces" / f"task-{n}" for n in range(workload.tasks)]
    for workspace in workspaces:
        workspace.mkdir(parents=True)
    makespan, cpu = anyio.run(_work_all, workload, stub_url, workspaces, scratch / "checkpoints.sqlite")
    check_workspaces(STACK, workspaces, workload)
    return StackRun(makespan, cpu)


async def _work_all(workload: Workload, stub_url: str, workspaces: list[Path], database: Path) -> tuple[float, float]:
    async with (
        AsyncOpenAI(base_url=stub_url, api_key="not-needed") as client,
        AsyncSqliteSaver.from_conn_string(str(database)) as saver,
    ):
        await saver.setup()  # creating the tables is start-up, which no stack is timed on
        graph = build_graph(client, saver)
        agents = anyio.CapacityLimiter(workload.agents)
        started, cpu = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as group:
            for n, workspace in enumerate(workspaces):
                group.start_soon(_work_one, graph, agents, workload, n, workspace)
        return time.perf_counter() - started, time.process_time() - cpu


async def _work_one(graph: Graph, agents: anyio.CapacityLimiter, workload: Workload, n: int, workspace: Path) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": task_prompt(workload, n)},
    ]
    start: AgentState = {"messages": messages, "workspace": str(workspace)}
    config: Any = {"configurable": {"thread_id": f"task-{n}"}, "recursion_limit": 4 * workload.turns}
    async with agents:
        final = await graph.ainvoke(start, config, durability=DURABILITY)
    last = final["messages"][-1].get("tool_calls") or []
    if not any(call["function"]["name"] == FINISH_TOOL for call in last):
        raise BenchError(f"{STACK}: task {n} ended without a finish call: {final['messages'][-1]}")
