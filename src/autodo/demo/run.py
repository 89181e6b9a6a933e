"""Run the demo: a temporary home, the stub model on loopback, six tasks, a team of agents."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from rich.live import Live
from rich.text import Text

from autodo.cli import render
from autodo.cli.work import ActivityFeed
from autodo.config import Settings
from autodo.desk import Desk
from autodo.inbox.model import InboxItem, ItemKind
from autodo.runs.worker import Worker
from autodo.tasks.model import NewTask
from autodo.testing import StubModelServer, load_script

SCRIPT = Path(__file__).with_name("script.toml")

DEMO_ANSWERS = {
    "offsite": "Lisbon, two days.",
    "colour": "Teal (#0f766e).",
}

REAL_MODEL_HINT = """The model was scripted: autodo's own stub server answered on loopback, so no API key was used.
To use a real model:
  export OPENAI_API_KEY=…            (or ANTHROPIC_API_KEY=…)
  or: export OPENAI_BASE_URL=http://localhost:11434/v1 AUTODO_MODEL=openai:llama3.2   (Ollama, vLLM, llama.cpp)
then: autodo add "…"  and  autodo work"""


def demo_profiles(url: str) -> str:
    return f"""triage_model = "openai:stub-triage"
triage_base_url = "{url}"

[profile.default]
model = "openai:stub-agent"
base_url = "{url}"
concurrency = 4
"""


def add_demo_tasks(desk: Desk) -> None:
    """Six tasks of different kinds: plain work, a dependency, a question, one for the person."""
    desk.add(NewTask(title="Write a haiku about autumn to haiku.txt"))
    fib = desk.add(NewTask(title="Write fib.py printing the first 10 Fibonacci numbers and check that it runs"))
    desk.add(NewTask(title="Document fib.py in NOTES.md", blocked_by=[fib.id]))
    desk.add(NewTask(title="Draft the agenda for the team offsite", priority="high"))
    desk.add(NewTask(title="Sign the vendor contract with ACME", priority="high"))
    desk.add(NewTask(title="Pick colours for the landing page and write styles.css"))


@dataclass
class DemoRun:
    desk: Desk
    worker: Worker
    interactive: bool
    answered: list[tuple[InboxItem, str]] = field(default_factory=list)

    def questions(self) -> list[InboxItem]:
        return [item for item in self.desk.inbox() if item.kind is ItemKind.QUESTION]

    def finished(self) -> bool:
        return self.worker.settled() and not self.questions()

    async def answer_questions(self, live: Live) -> None:
        while True:
            for item in self.questions():
                text = await self._answer_for(item, live)
                self.desk.answer(item.id, text, by="demo" if not self.interactive else "person")
                self.answered.append((item, text))
            await anyio.sleep(0.3)

    async def _answer_for(self, item: InboxItem, live: Live) -> str:
        if self.interactive:
            live.stop()
            text = await anyio.to_thread.run_sync(render.console.input, f"{item.prompt} ")
            live.start()
            return text.strip() or "Use your judgement."
        await anyio.sleep(1.0)  # long enough to see the question waiting on the board
        return next((answer for key, answer in DEMO_ANSWERS.items() if key in item.prompt.lower()), "Yes.")


def run_demo(*, interactive: bool = False) -> None:
    home = Path(tempfile.mkdtemp(prefix="autodo-demo-"))
    with StubModelServer(load_script(SCRIPT)) as stub:
        settings = Settings(home=home, openai_api_key="stub", anthropic_api_key=None, model=None, database_url=None)
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.profiles_path.write_text(demo_profiles(stub.url), encoding="utf-8")
        desk = Desk(settings)
        add_demo_tasks(desk)
        worker = Worker(desk, agents=4, worker_id="demo")
        worker.launch()
        try:
            demo = DemoRun(desk, worker, interactive)
            anyio.run(_watch, demo)
        finally:
            worker.shutdown()
    print_summary(demo, home)


async def _watch(demo: DemoRun) -> None:
    header = "autodo demo: 4 agents, scripted model"
    feed = ActivityFeed(demo.desk)
    with Live(refresh_per_second=6, console=render.console, transient=False) as live:
        async with anyio.create_task_group() as group:
            group.start_soon(demo.worker.serve)
            group.start_soon(demo.answer_questions, live)
            while not demo.finished():
                live.update(render.live_view(demo.desk.tasks(), feed.latest(), header))
                await anyio.sleep(0.25)
            group.cancel_scope.cancel()
        live.update(render.live_view(demo.desk.tasks(), feed.latest(), header))


def print_summary(demo: DemoRun, home: Path) -> None:
    console = render.console
    desk = demo.desk
    console.print()
    console.rule("summary")
    for item, text in demo.answered:
        console.print(Text(f"asked: {item.prompt}  answered: {text}", style="magenta"))
    for task in desk.tasks():
        detail = desk.task(task.id)
        tokens = sum(run.total_tokens for run in detail.runs)
        files = sorted(p.name for p in (desk.settings.workspaces_dir / task.id).glob("*")) if detail.runs else []
        line = f"{task.state.value:9} {task.title}\n          {task.result or task.lane_reason or ''}"
        console.print(line + (f"\n          {tokens} tokens; files: {', '.join(files) or '—'}" if detail.runs else ""))
    for item in desk.inbox():
        console.print(Text(f"waiting on you: {item.prompt}  (autodo done {item.task_id})", style="bold magenta"))
    usage = desk.summary().usage
    console.print(f"{usage['requests']} model turns, {usage['input_tokens'] + usage['output_tokens']} tokens in all.")
    console.print(f"Workspaces: {desk.settings.workspaces_dir}")
    console.print(f"Look around: AUTODO_HOME={home} autodo ls")
    console.print(Text(REAL_MODEL_HINT, style="bright_black"))
