"""Click commands: thin clients of the desk's service functions."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import BaseModel

from autodo.agents.choice import HOW_TO_CONFIGURE
from autodo.cli import render
from autodo.desk import Desk
from autodo.errors import AutodoError
from autodo.runs.budget import parse_budget
from autodo.steering.model import Mode
from autodo.tasks.model import PRIORITIES, NewTask, parse_lane

P = ParamSpec("P")
R = TypeVar("R")

CONTEXT = {"help_option_names": ["-h", "--help"]}


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print an AutodoError as one clear line and exit 1, instead of a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AutodoError as error:
            click.echo(f"error: {error.message}", err=True)
            sys.exit(1)

    return wrapper


def emit_json(value: BaseModel | list[Any]) -> None:
    if isinstance(value, BaseModel):
        click.echo(value.model_dump_json(indent=2))
    else:
        click.echo(json.dumps([item.model_dump(mode="json") for item in value], indent=2))


json_option: Callable[[Callable[P, R]], Callable[P, R]] = click.option(
    "as_json", "--json", is_flag=True, help="Print JSON instead of a table."
)


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@click.version_option(package_name="autodo")
@click.pass_context
@reports_errors
def cli(ctx: click.Context) -> None:
    """autodo: the to-do list that does itself.

    Run with no command for a short summary of the board and what waits on you.
    """
    if ctx.invoked_subcommand is None:
        render.summary(Desk().summary())


@cli.command()
@click.argument("title")
@click.option("--body", default="", help="Details for the agent.")
@click.option("--after", "after", multiple=True, metavar="ID", help="Start only when task ID is done (repeatable).")
@click.option("--priority", type=click.Choice(list(PRIORITIES)), default="normal", show_default=True)
@click.option("--label", "labels", multiple=True, help="A label; lane:agent|ask|human sets the lane (repeatable).")
@click.option(
    "--profile", default=None, help="Agent profile to work it (default: the label profile:NAME or 'default')."
)
@click.option("--budget", "limits", default=None, help='Its own limits, e.g. "turns=20 usd=1" (else the profile\'s).')
@json_option
@reports_errors
def add(
    title: str, body: str, after: tuple[str, ...], priority: str, labels: tuple[str, ...], profile: str | None,
    limits: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Add a task."""
    desk = Desk()
    request = NewTask(
        title=title, body=body, priority=priority, labels=list(labels), blocked_by=list(after), profile=profile,
        budget=parse_budget(limits) if limits else None,
    )  # fmt: skip
    task = desk.add(request)
    if as_json:
        emit_json(task)
        return
    click.echo(f"added {task.id}  {task.title}  [{task.state.value}]")
    if task.state.value == "new" and not desk.model_configured:
        click.echo(
            f"It waits in the Inbox column untriaged: {HOW_TO_CONFIGURE}. Or: autodo move {task.id} --lane agent"
        )


@cli.command("ls")
@click.option("--state", "states", multiple=True, help="Only tasks in this state (repeatable).")
@click.option("--lane", default=None, type=click.Choice(["agent", "ask", "human"]))
@json_option
@reports_errors
def list_command(states: tuple[str, ...], lane: str | None, as_json: bool) -> None:
    """List tasks by priority."""
    from autodo.tasks.model import State

    tasks = Desk().tasks([State(state) for state in states] or None, parse_lane(lane) if lane else None)
    emit_json(tasks) if as_json else render.task_table(tasks)


@cli.command()
@click.argument("task_id")
@json_option
@reports_errors
def show(task_id: str, as_json: bool) -> None:
    """Show a task, its runs, open questions and transcript."""
    detail = Desk().task(task_id)
    emit_json(detail) if as_json else render.task_detail(detail)


@cli.command()
@click.argument("task_id")
@click.option("--lane", required=True, type=click.Choice(["agent", "ask", "human"]))
@click.option("--reason", default=None)
@json_option
@reports_errors
def move(task_id: str, lane: str, reason: str | None, as_json: bool) -> None:
    """Move a task to another lane (overrides triage)."""
    task = Desk().move(task_id, parse_lane(lane), reason)
    emit_json(task) if as_json else click.echo(f"{task.id} → lane {lane} [{task.state.value}]")


@cli.command()
@click.argument("task_id")
@click.option("--on", "blockers", multiple=True, required=True, metavar="ID", help="Task to wait for (repeatable).")
@reports_errors
def block(task_id: str, blockers: tuple[str, ...]) -> None:
    """Make a task wait until other tasks are done."""
    task = Desk().block(task_id, list(blockers))
    click.echo(f"{task.id} waits for {', '.join(task.blocked_by)}")


@cli.command()
@click.argument("task_id")
@click.option("--note", default=None, help="What was done.")
@reports_errors
def done(task_id: str, note: str | None) -> None:
    """Mark a task done (yours, a review, or one you did yourself)."""
    task = Desk().done(task_id, note)
    click.echo(f"{task.id} done: {task.title}")


@cli.command()
@click.argument("task_id")
@reports_errors
def cancel(task_id: str) -> None:
    """Cancel a task and stop its agent; the workspace is kept."""
    task = Desk().cancel(task_id)
    click.echo(f"{task.id} cancelled")


@cli.command()
@click.argument("task_id")
@click.argument("text")
@click.option(
    "--mode",
    type=click.Choice([mode.value for mode in Mode]),
    default="steer",
    show_default=True,
    help="steer: with its next model request; queue: when it would otherwise finish; "
    "interrupt: cut the current turn or command short first.",
)
@click.option("--queue", "keep", is_flag=True, help="If the task is not running, keep the message for its next run.")
@reports_errors
def say(task_id: str, text: str, mode: str, keep: bool) -> None:
    """Tell a running agent something, mid-task."""
    message = Desk().say(task_id, text, Mode(mode), keep=keep)
    where = "kept for its next run" if message.run_id is None else f"sent to {message.run_id} ({message.mode.value})"
    click.echo(f"message {message.id} {where}")


@cli.command()
@click.argument("task_id")
@reports_errors
def pause(task_id: str) -> None:
    """Pause a task's run: a turn or command in flight is cut short; `resume` continues it."""
    task = Desk().pause(task_id)
    click.echo(f"{task.id} paused")


@cli.command()
@click.argument("task_id")
@reports_errors
def resume(task_id: str) -> None:
    """Resume a paused run from its last completed step."""
    task = Desk().resume(task_id)
    click.echo(f"{task.id} resumed ({task.state.value})")


@cli.command()
@click.argument("item_id")
@click.option("--for-run", is_flag=True, help="Also allow later calls the same rule holds, in this run only.")
@reports_errors
def approve(item_id: str, for_run: bool) -> None:
    """Allow the exact tool call an approval item shows (once)."""
    item = Desk().approve(item_id, for_run=for_run)
    click.echo(f"{item.answer}: {item.id} on task {item.task_id}")


@cli.command()
@click.argument("item_id")
@click.option("--reason", required=True, help="Why not; the agent reads it.")
@reports_errors
def deny(item_id: str, reason: str) -> None:
    """Refuse the tool call an approval item shows."""
    item = Desk().deny(item_id, reason)
    click.echo(f"denied {item.id} on task {item.task_id}")


@cli.command()
@click.argument("task_id")
@click.argument("limits")
@reports_errors
def budget(task_id: str, limits: str) -> None:
    """Set a task's own budget, e.g. "turns=60 usd=2.5 tokens=200000 minutes=30"; a waiting run carries on."""
    task = Desk().set_budget(task_id, limits)
    click.echo(f"{task.id} budget: " + " ".join(f"{key}={value}" for key, value in (task.budget or {}).items()))


@cli.command()
@json_option
@reports_errors
def inbox(as_json: bool) -> None:
    """Everything waiting on you: questions, hand-offs, reviews (oldest first)."""
    items = Desk().inbox()
    emit_json(items) if as_json else render.inbox(items)


@cli.command()
@click.argument("item_id")
@click.argument("text")
@reports_errors
def answer(item_id: str, text: str) -> None:
    """Answer an inbox item; the waiting agent resumes."""
    item = Desk().answer(item_id, text)
    click.echo(f"answered {item.id} ({item.kind.value} on task {item.task_id})")


@cli.command()
@json_option
@reports_errors
def profiles(as_json: bool) -> None:
    """List agent profiles (from profiles.toml plus the defaults)."""
    desk = Desk()
    found = list(desk.profiles.profile.values())
    emit_json(found) if as_json else render.profiles(found, desk.settings.profiles_path)


@cli.command()
@click.option(
    "--agents",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Runs of each profile at once in this worker.",
)
@click.option("--worker-id", default=None, help="Stable id; a restarted worker with the same id resumes its runs.")
@click.option("--until-settled", is_flag=True, help="Exit when nothing can move without the person.")
@click.option(
    "--lease",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds without a heartbeat after which other workers take this one's runs over.",
)
@reports_errors
def work(agents: int, worker_id: str | None, until_settled: bool, lease: float) -> None:
    """Start the agent team in the foreground (on PostgreSQL, as many workers on as many machines as you like)."""
    from autodo.cli.work import run_worker

    run_worker(Desk(), agents=agents, worker_id=worker_id, until_settled=until_settled, lease=lease)


@cli.command()
@click.option("--interactive", is_flag=True, help="Wait for you to answer the agents' questions.")
@reports_errors
def demo(interactive: bool) -> None:
    """Watch a team of agents work six tasks with a scripted model (no API key needed)."""
    from autodo.demo.run import run_demo

    run_demo(interactive=interactive)


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback needs the token."
)
@click.option("--port", default=8420, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--open", "open_browser", is_flag=True, help="Open the board in a browser.")
@click.option("--no-auth", is_flag=True, help="Serve without the token (only on a loopback address).")
@click.option(
    "--agents",
    default=4,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Runs of each profile at once in the worker started beside the server (0: no worker here).",
)
@reports_errors
def serve(host: str, port: int, open_browser: bool, no_auth: bool, agents: int) -> None:
    """Serve the web board, the REST API (/api/v1) and MCP (/mcp), with a worker beside them."""
    from autodo.server.serve import ServeOptions, serve_board

    serve_board(
        Desk().settings, ServeOptions(host=host, port=port, open_browser=open_browser, auth=not no_auth, agents=agents)
    )


@cli.command()
@reports_errors
def token() -> None:
    """Print the API token (created on first use, kept in a 0600 file in the home)."""
    from autodo.server.auth import load_or_create_token

    click.echo(load_or_create_token(Desk().settings.home))


@cli.command()
@reports_errors
def mcp() -> None:
    """Serve autodo's tools to an MCP client over stdio (add_task, inbox, answer, steer…)."""
    from autodo.server.mcp import run_stdio

    run_stdio(Desk())


@cli.command("stub-model")
@click.option("--script", "script_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@reports_errors
def stub_model(script_path: Path, port: int, host: str) -> None:
    """Serve a scripted OpenAI-compatible model for offline runs and tests."""
    from autodo.testing import load_script, serve_forever

    load_script(script_path)  # fail fast on a bad script, before binding the port
    click.echo(f"stub model on http://{host}:{port}/v1 (script {script_path}); Ctrl-C stops it")
    serve_forever(script_path, host, port)


from autodo.cli.audit import audit  # noqa: E402

cli.add_command(audit)
from autodo.cli.radar import radar  # noqa: E402

cli.add_command(radar)

from autodo.cli.doctor import doctor  # noqa: E402

cli.add_command(doctor)

from autodo.cli.secrets import secret  # noqa: E402

cli.add_command(secret)


def main() -> None:
    # pydantic-ai prints a promotional banner on a terminal; it would break the live board.
    os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")
    cli()
