"""`autodo audit`: check the audit log's hash chain, and read the log."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

# app.py imports this module at its end, after defining these (the package always loads app first).
from autodo.cli.app import emit_json, reports_errors
from autodo.desk import Desk
from autodo.policy.audit import AuditRecord, Verdict, escape_control, list_records, verify

# Not app's json_option: inside the import cycle mypy cannot see that one's type.
json_option = click.option("as_json", "--json", is_flag=True, help="Print JSON instead of text.")


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: every decision and action of the agents."""


audit: click.Group = audit_group  # typed for app.py, which mypy checks inside the import cycle


@audit.command("verify")
@json_option
@reports_errors
def verify_command(as_json: bool) -> None:
    """Check every record's hash and link and the anchored head; exit 1 at the first bad record."""
    desk = Desk()
    verdict = verify(desk.engine, desk.settings.home)
    emit_json(verdict) if as_json else click.echo(verdict_text(verdict))
    if not verdict.ok:
        sys.exit(1)


@audit.command("show")
@click.option("--task", "task_id", default=None, metavar="ID", help="Only records of this task.")
@click.option("--agent", default=None, metavar="NAME", help="Only records of this agent profile.")
@click.option("--tool", default=None, metavar="NAME", help="Only records of this tool.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="Show the latest N.")
@json_option
@reports_errors
def show_command(task_id: str | None, agent: str | None, tool: str | None, limit: int, as_json: bool) -> None:
    """Show the latest records, oldest first, one a line."""
    records = list_records(Desk().engine, task_id=task_id, agent=agent, tool=tool, limit=limit)
    if as_json:
        emit_json(records)
        return
    if not records:
        click.echo("No audit records match.")
    for entry in records:
        click.echo(record_line(entry))


def verdict_text(verdict: Verdict) -> str:
    if not verdict.ok:
        where = f" at record {verdict.bad_seq}" if verdict.bad_seq is not None else ""
        return f"audit log BROKEN{where}: {verdict.problem}"
    checked = f"; head matches {' and '.join(verdict.anchors)}" if verdict.anchors else ""
    lines = [f"audit log OK: {verdict.records} records{checked}", *(f"note: {note}" for note in verdict.notes)]
    return "\n".join(lines)


def record_line(entry: AuditRecord) -> str:
    """One record on one line; escaped again, in case a row was edited in the database."""
    named = {"task": entry.task_id, "run": entry.run_id, "agent": entry.agent, "tool": entry.tool}
    parts = [str(entry.seq), entry.at, entry.kind, entry.decision or "-", entry.actor]
    parts += [f"{name}={value}" for name, value in named.items() if value is not None]
    if entry.target is not None:
        parts.append(f"target={entry.target}")
    parts += [f"{name}={_shown(value)}" for name, value in entry.details.items()]
    return escape_control("  ".join(parts))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
