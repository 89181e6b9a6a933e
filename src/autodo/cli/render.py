"""Rich views of the board for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from autodo.agents.choice import HOW_TO_CONFIGURE
from autodo.agents.profiles import Profile
from autodo.desk import BoardSummary, TaskDetail
from autodo.display import inert
from autodo.inbox.model import InboxItem, ItemKind
from autodo.tasks.model import State, Task

if TYPE_CHECKING:  # the radar's modules load numpy and its models: only when a radar command runs
    from autodo.radar.service import ClusterDetail, ImportReport


def safe(text: object) -> str:
    """Text from people, agents or the outside, made inert for a terminal."""
    return inert(text)


class SafeConsole(Console):
    """Prints what people and agents wrote as plain text: no Rich markup, no terminal control codes."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(safe(text), **options)


console = SafeConsole(markup=False, highlight=False)

STATE_STYLE = {
    State.NEW: "bright_black", State.BLOCKED: "yellow", State.QUEUED: "cyan", State.RUNNING: "bold blue",
    State.WAITING: "bold magenta", State.REVIEW: "magenta", State.YOURS: "bold magenta", State.DONE: "green",
    State.FAILED: "bold red", State.CANCELLED: "bright_black", State.PAUSED: "yellow",
}  # fmt: skip


def state_text(state: State) -> Text:
    return Text(state.value, style=STATE_STYLE[state])


def tasks_table(tasks: list[Task], activity: dict[str, str] | None = None) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", expand=True)
    table.add_column("id", no_wrap=True, style="bright_black")
    table.add_column("state", no_wrap=True)
    table.add_column("lane", no_wrap=True)
    table.add_column("title", ratio=3, overflow="fold")
    table.add_column("why / latest", ratio=2, no_wrap=True, overflow="ellipsis")
    for task in tasks:
        note = (activity or {}).get(task.id) or task.lane_reason or ""
        lane = task.lane.value if task.lane else "—"
        table.add_row(task.id[-6:], state_text(task.state), lane, safe(task.title), safe(note))
    return table


def task_table(tasks: list[Task]) -> None:
    if not tasks:
        console.print('No tasks yet. Add one: autodo add "Write a haiku about autumn to haiku.txt"')
        return
    console.print(tasks_table(tasks))


def task_detail(detail: TaskDetail) -> None:
    task = detail.task
    console.print(Text(safe(task.title), style="bold"), Text(f"  {task.id}", style="bright_black"))
    console.print("state", state_text(task.state), f" lane {task.lane or '—'}", f" profile {task.profile}")
    if task.lane_reason:
        console.print(f"why: {task.lane_reason} (by {task.lane_set_by})")
    if task.blocked_by:
        console.print(f"waits for: {', '.join(task.blocked_by)}")
    if task.result:
        console.print(f"result: {task.result}")
    for run in detail.runs:
        cost = "cost unknown" if run.cost_usd is None else f"${run.cost_usd:.4f}"
        console.print(f"run {run.attempt} [{run.state.value}] {run.requests} turns, {run.total_tokens} tokens, {cost}")
    for item in detail.inbox:
        console.print(Text(safe(f"waiting on you ({item.kind.value} {item.id}): {item.prompt}"), style="magenta"))
    for event in detail.events[-30:]:
        console.print(Text(f"{event.at[11:19]} {event.kind:14} ", style="bright_black"), safe(_event_line(event.data)))


def _event_line(data: dict[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in data.items() if value not in (None, "", []))[:200]


def inbox(items: list[InboxItem]) -> None:
    if not items:
        console.print("Nothing is waiting on you.")
        return
    for item in items:
        console.print(Text(f"{item.id}  {item.kind.value}  task {item.task_id}", style="bold magenta"))
        console.print(f"  {item.prompt}")
        for key, value in item.context.items():
            if value:
                console.print(Text(safe(f"  {key.replace('_', ' ')}: {value}"), style="bright_black"))
    console.print('Answer with: autodo answer ITEM_ID "…"   (a hand-off or review: autodo done TASK_ID)')
    if any(item.kind is ItemKind.APPROVAL for item in items):
        console.print("Approvals: autodo approve ITEM_ID [--for-run]  or  autodo deny ITEM_ID --reason …")
    if any(item.kind is ItemKind.BUDGET for item in items):
        console.print('Budgets: autodo answer ITEM_ID "turns=80 usd=5"  or  autodo answer ITEM_ID stop')


def summary(board: BoardSummary) -> None:
    counts = "  ".join(f"{name}: {count}" for name, count in board.columns.items())
    console.print(Text("autodo", style="bold"), counts)
    if not board.model_configured:
        console.print(Text(f"Triage is off: {HOW_TO_CONFIGURE}.", style="yellow"))
    if board.waiting_on_you:
        console.print(Text(f"{len(board.waiting_on_you)} waiting on you:", style="bold magenta"))
        for item in board.waiting_on_you[:10]:
            console.print(f"  {item.id}  {item.kind.value}: {item.prompt[:100]}")
    else:
        console.print("Nothing is waiting on you.")
    tokens = board.usage["input_tokens"] + board.usage["output_tokens"]
    console.print(Text(f"{board.usage['requests']} model turns, {tokens} tokens so far", style="bright_black"))


def profiles(found: list[Profile], path: Path) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("name", "model", "concurrency", "budget", "tools"):
        table.add_column(column)
    for profile in found:
        limits = profile.budget.model_dump(exclude_none=True)
        budget = ", ".join(f"{key}={value}" for key, value in limits.items()) or "no limits"
        model = profile.model or "(default model)"
        table.add_row(profile.name, model, str(profile.concurrency), budget, ", ".join(profile.tools))
    console.print(table)
    console.print(Text(f"from {path}" if path.exists() else f"defaults (no {path})", style="bright_black"))


def live_view(tasks: list[Task], activity: dict[str, str], header: str) -> Group:
    return Group(Text(header, style="bold"), tasks_table(tasks, activity))


def radar_report(report: ImportReport) -> None:
    console.print(
        f"{report.added} new items ({report.duplicates} repeats), {report.refreshed} already known; "
        f"{report.clusters_created} new clusters, {report.clusters_updated} grew"
    )
    for reason, count in sorted(report.skipped.items(), key=lambda pair: -pair[1]):
        console.print(Text(f"  skipped {count}: {reason}", style="yellow"))
    for verb, ids in (("created", report.tasks_created), ("updated", report.tasks_updated)):
        if ids:
            console.print(f"tasks {verb}: {', '.join(ids)}")
    if report.tasks_reopened:
        console.print(
            Text(f"tasks reopened (reported again after done): {', '.join(report.tasks_reopened)}", style="bold")
        )


def radar_cluster(detail: ClusterDetail) -> None:
    console.print(Text(safe(detail.label), style="bold"), Text(f"  {detail.id}", style="bright_black"))
    console.print(
        f"score {detail.score:.1f} ({detail.details.get('explanation', '')}); {detail.reporters} people, "
        f"{detail.size} items; trend {detail.details.get('trend', '?')}; task {detail.task_id or 'none yet'}"
    )
    for quote in detail.details.get("quotes", []):
        quoted, link = safe(f"  “{quote['text']}”"), safe(f" {quote.get('url') or ''}")
        console.print(Text(quoted, style="italic"), Text(link, style="cyan"))
    for item in detail.items:
        text = " ".join(item.text.split())[:110]
        console.print(Text(f"  {item.id} {item.source:8} ", style="bright_black"), Text(safe(text)))
