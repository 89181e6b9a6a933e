"""The web board: server-rendered pages over the desk, and the small HTML parts its script refreshes.

Every page embeds the event head it was rendered at; ``static/app.js`` follows the event stream
from there and, on an event, fetches the part of the page that changed (``/parts/...``), so all
HTML is rendered here, in one place, from the same service functions as the CLI and the API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from autodo import __version__
from autodo.desk import Desk
from autodo.display import inert
from autodo.errors import NotFound
from autodo.events import head_seq, list_events
from autodo.overview import Card
from autodo.tasks.model import COLUMNS, TERMINAL, State, Task

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
DONE_SHOWN = 30  # the Done column shows the latest ones; the CLI lists them all
ONE_LINE = 90  # tool arguments up to this long show on one line

# Where a card dropped on a column goes: a lane (POST .../lane) or "done" (POST .../done).
DROP_TARGETS = {"Agents working": "agent", "Waiting on you": "ask", "Yours": "human", "Done": "done"}
COLUMN_HINTS = {
    "Inbox": "New tasks wait here for triage.",
    "Agents working": "Queued, running and blocked.",
    "Waiting on you": "Questions, approvals, paused runs.",
    "Yours": "Only you can do these.",
    "Review": "Agents are done; check the result.",
    "Done": "Done, failed and cancelled.",
}

router = APIRouter(include_in_schema=False)


# Filters


def duration(seconds: float | None) -> str:
    """``45s``, ``3m 05s``, ``2h 04m``, ``3d 2h`` (app.js formats the live ones the same way)."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def tokens(count: int | None) -> str:
    if not count:
        return "0"
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k".replace(".0k", "k")
    return f"{count / 1_000_000:.1f}M".replace(".0M", "M")


def usd(amount: float | None) -> str:
    if amount is None:
        return "—"  # no price is known for the model
    if amount == 0:
        return "$0"
    return "<$0.01" if amount < 0.01 else f"${amount:,.2f}"


def pretty_json(value: Any) -> str:
    """Tool arguments as JSON, on one line when short; text that is not JSON (clipped, malformed) as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    line = json.dumps(value, ensure_ascii=False)
    return line if len(line) <= ONE_LINE else json.dumps(value, indent=2, ensure_ascii=False)


def slug(text: str) -> str:
    return "-".join(text.lower().split())


def sparkline(counts: list[int], width: int = 120, height: int = 28) -> str:
    """SVG polyline points for daily counts, oldest first (an empty string when there are none)."""
    if not counts:
        return ""
    top = max(max(counts), 1)
    step = width / max(len(counts) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (count / top) * (height - 4):.1f}" for i, count in enumerate(counts))


def _filters() -> dict[str, Any]:
    return {
        "duration": duration, "tokens": tokens, "usd": usd, "pretty": pretty_json, "slug": slug,
        "sparkline": sparkline,
    }  # fmt: skip


def _inert(value: Any) -> Any:
    """Every value a template prints: text with control characters made visible (see autodo.display)."""
    if isinstance(value, Markup):  # already-built HTML (macros, filters): its text parts were printed through here
        return value
    return inert(value) if isinstance(value, str) else value


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_inert,
    )
    env.filters.update(_filters())
    env.globals.update(version=__version__, drop_targets=DROP_TARGETS, column_hints=COLUMN_HINTS)
    return Jinja2Templates(env=env)


templates = _templates()


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    headers = {"Cache-Control": "no-store"}
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=headers)


def page(request: Request, name: str, context: Callable[[Desk], dict[str, Any]]) -> HTMLResponse:
    """A whole page. The event head is read first, so the stream starts at or before what it shows."""
    desk = desk_of(request)
    head = head_seq(desk.engine)
    return render(request, name, head=head, inbox_count=len(desk.inbox()), **context(desk))


# Pages


@router.get("/", response_class=HTMLResponse)
def board_page(request: Request) -> HTMLResponse:
    """The board: a column per lane and state, and a form to add a task."""
    return page(request, "board.html", board_context)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: str) -> HTMLResponse:
    """One task: its live transcript, changed files, open items, steering box and controls."""
    try:
        return page(request, "task.html", lambda desk: task_context(desk, task_id, with_blockers=True))
    except NotFound as error:
        return render(request, "missing.html", message=error.message, head=0, inbox_count=0, status_code=404)


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request) -> HTMLResponse:
    """Everything that waits on the person, oldest first."""
    return page(request, "inbox.html", lambda desk: {"items": inbox_entries(desk)})


@router.get("/team", response_class=HTMLResponse)
def team_page(request: Request) -> HTMLResponse:
    """The profiles: what each agent does now, queues, tokens and cost today."""
    return page(request, "team.html", lambda desk: {"team": desk.team()})


@router.get("/radar", response_class=HTMLResponse)
def radar_page(request: Request) -> HTMLResponse:
    """The feedback radar: clusters by score, with their trend, quotes and task."""
    from autodo.radar.service import Radar  # numpy and the model load only when the radar is used

    return page(request, "radar.html", lambda desk: {"clusters": Radar(desk).clusters()})


# Parts: the pieces of a page that change while it is open


@router.get("/parts/board", response_class=HTMLResponse)
def board_part(request: Request) -> HTMLResponse:
    cards = desk_of(request).cards()
    return render(request, "parts/board.html", columns=board_columns(cards), empty=not cards)


@router.get("/parts/tasks/{task_id}/head", response_class=HTMLResponse)
def task_head_part(request: Request, task_id: str) -> HTMLResponse:
    return render(request, "parts/task_head.html", **task_context(desk_of(request), task_id))


@router.get("/parts/tasks/{task_id}/transcript", response_class=HTMLResponse)
def transcript_part(request: Request, task_id: str, after: int = 0) -> HTMLResponse:
    events = list_events(desk_of(request).engine, task_id, after=after)
    return render(request, "parts/transcript.html", events=events)


@router.get("/parts/tasks/{task_id}/changes", response_class=HTMLResponse)
def changes_part(request: Request, task_id: str) -> HTMLResponse:
    return render(request, "parts/changes.html", changes=desk_of(request).changes(task_id))


@router.get("/parts/inbox", response_class=HTMLResponse)
def inbox_part(request: Request) -> HTMLResponse:
    return render(request, "parts/inbox.html", items=inbox_entries(desk_of(request)))


@router.get("/parts/team", response_class=HTMLResponse)
def team_part(request: Request) -> HTMLResponse:
    return render(request, "parts/team.html", team=desk_of(request).team())


# What the templates are given


def board_columns(cards: list[Card]) -> list[tuple[str, list[Card], int]]:
    """(column, the cards it shows, how many it holds); Done shows its latest first."""
    columns = []
    for name in COLUMNS:
        mine = [card for card in cards if card.column == name]
        if name == "Done":
            mine = sorted(mine, key=lambda card: card.task.updated_at, reverse=True)
        columns.append((name, mine[:DONE_SHOWN] if name == "Done" else mine, len(mine)))
    return columns


def board_context(desk: Desk) -> dict[str, Any]:
    cards = desk.cards()
    return {
        "columns": board_columns(cards), "empty": not cards, "profiles": list(desk.profiles.profile),
        "open_tasks": [card.task for card in cards if card.task.state not in TERMINAL],
        "triage": desk.model_configured,
    }  # fmt: skip


def task_context(desk: Desk, task_id: str, *, with_blockers: bool = False) -> dict[str, Any]:
    detail = desk.task(task_id)
    card = desk.card(task_id)
    blockers = {task.id: task.title for task in desk.tasks()} if with_blockers and detail.task.blocked_by else {}
    return {
        "detail": detail, "task": detail.task, "card": card, "titles": blockers,
        "controls": controls_for(detail.task), "last_seq": detail.events[-1].seq if detail.events else 0,
    }  # fmt: skip


def controls_for(task: Task) -> list[str]:
    """The actions that make sense for the task now, in the order the page shows them."""
    if task.state in TERMINAL:
        return []
    live = {State.RUNNING: ["pause", "cancel"], State.WAITING: ["pause", "cancel"], State.PAUSED: ["resume", "cancel"]}
    return live.get(task.state, ["done", "cancel"])


def inbox_entries(desk: Desk) -> list[dict[str, Any]]:
    titles = {task.id: task.title for task in desk.tasks()}
    return [{"item": item, "title": titles.get(item.task_id, item.task_id)} for item in desk.inbox()]
