"""Approval requests and decisions: single-use, bound to one run, one tool call and its arguments."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from autodo.approvals.rules import arguments_hash
from autodo.errors import Conflict, InvalidInput, NotFound
from autodo.events import append_event
from autodo.inbox.model import InboxItem, ItemKind, ItemState
from autodo.inbox.store import close_item, get_item, open_item
from autodo.policy import audit
from autodo.store import now
from autodo.store.schema import approvals, runs

PROMPT_ARGUMENT_LIMIT = 2000


class Decision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class Scope(StrEnum):
    CALL = "call"  # this one call
    RUN = "run"  # this call and every later call the same rule holds, in the same run


@dataclass(frozen=True)
class _Call:
    """The tool call an audit record is about."""

    run_id: str
    task_id: str
    tool: str
    arguments: dict[str, Any]


def is_agent(actor: str) -> bool:
    """An agent acting for itself (a run, or a caller named ``agent:<name>``) never decides approvals."""
    return actor.strip().lower().startswith(("agent:", "run-"))


def request_approval(
    conn: sa.Connection,
    *,
    key: str,
    run_id: str,
    task_id: str,
    tool: str,
    arguments: dict[str, Any],
    rule: str,
    expires_after: float,
) -> str | None:
    """Open an approval item for the call and return its id; None when "allow for this run" covers it."""
    call = _Call(run_id, task_id, tool, arguments)
    if _granted_for_run(conn, run_id, tool, rule):
        append_event(conn, task_id, "approval.granted_for_run", {"tool": tool, "rule": rule}, run_id=run_id)
        _audit(conn, "approval.granted_for_run", call, "autodo", "allow", f"approval.granted_for_run:{key}", rule=rule)
        return None
    shown = json.dumps(arguments, ensure_ascii=False)
    if len(shown) > PROMPT_ARGUMENT_LIMIT:
        shown = shown[:PROMPT_ARGUMENT_LIMIT] + f"… [{len(shown)} chars]"
    expires_at = time.time() + expires_after
    context = {"tool": tool, "arguments": arguments, "rule": rule, "expires_at": expires_at}
    item = open_item(
        conn, task_id=task_id, kind=ItemKind.APPROVAL, prompt=f"Allow {tool} {shown}? ({rule})",
        key=f"approval:{key}", run_id=run_id, context=context,
    )  # fmt: skip
    exists = conn.execute(sa.select(approvals.c.item_id).where(approvals.c.call_key == key)).first()
    if exists is None:
        conn.execute(
            approvals.insert().values(
                item_id=item.id, run_id=run_id, call_key=key, tool=tool, arguments=arguments,
                arguments_hash=arguments_hash(tool, arguments), rule=rule, decision=Decision.PENDING.value,
                expires_at=expires_at,
            )
        )  # fmt: skip
    _audit(
        conn, "approval.requested", call, "autodo", "ask", f"approval.requested:{item.id}", item_id=item.id, rule=rule
    )
    return item.id


def _granted_for_run(conn: sa.Connection, run_id: str, tool: str, rule: str) -> bool:
    query = sa.select(approvals.c.item_id).where(
        approvals.c.run_id == run_id,
        approvals.c.tool == tool,
        approvals.c.rule == rule,
        approvals.c.decision == Decision.APPROVED.value,
        approvals.c.scope == Scope.RUN.value,
    )
    return conn.execute(query).first() is not None


def decide(
    conn: sa.Connection, item_id: str, *, approve: bool, by: str, scope: Scope = Scope.CALL, reason: str = ""
) -> InboxItem:
    """The person's decision on a pending request; the first decision wins, an agent's is refused."""
    if is_agent(by):
        raise Conflict(f"{by} is an agent; only a person approves or denies a tool call")
    row = _row(conn, item_id)
    if row.decision != Decision.PENDING.value:
        raise Conflict(f"approval {item_id} was already {row.decision}; a decision is single-use")
    if time.time() >= row.expires_at:  # the run records the expiry when it next looks
        raise Conflict(f"approval {item_id} expired before it was decided; the agent was told it was refused")
    if not approve and not reason.strip():
        raise InvalidInput("a denial needs a reason (the agent reads it): pass --reason")
    decision = Decision.APPROVED if approve else Decision.DENIED
    updated = conn.execute(
        approvals.update()
        .where(approvals.c.item_id == item_id, approvals.c.decision == Decision.PENDING.value)
        .values(decision=decision.value, scope=scope.value if approve else None, reason=reason, decided_by=by)
    )
    if updated.rowcount != 1:
        raise Conflict(f"approval {item_id} was decided meanwhile")
    answer = ("approved for this run" if scope is Scope.RUN else "approved") if approve else f"denied: {reason}"
    item = close_item(conn, item_id, answer, by)
    scope_given = scope.value if approve else None
    _audit_decision(conn, f"approval.{decision.value}", row, by, scope=scope_given, reason=reason or None)
    return item


def expire(conn: sa.Connection, item_id: str) -> bool:
    """Refuse a request nobody decided in time; False when a decision got there first."""
    updated = conn.execute(
        approvals.update()
        .where(approvals.c.item_id == item_id, approvals.c.decision == Decision.PENDING.value)
        .values(decision=Decision.EXPIRED.value, decided_by="autodo")
    )
    if updated.rowcount == 1 and get_item(conn, item_id).state is ItemState.PENDING:
        close_item(conn, item_id, "expired", "autodo")
    if updated.rowcount == 1:
        _audit_decision(conn, "approval.expired", _row(conn, item_id), "autodo")
    return updated.rowcount == 1


def expire_if_due(conn: sa.Connection, item_id: str) -> bool:
    """Expire the request if its time is up and nobody decided; True when it expired now."""
    return time.time() >= _row(conn, item_id).expires_at and expire(conn, item_id)


def consume(
    conn: sa.Connection, item_id: str, *, run_id: str, call_key: str, tool: str, arguments: dict[str, Any]
) -> str | None:
    """Use an approval for exactly this call, once. None means go ahead; otherwise why not."""
    expire_if_due(conn, item_id)
    row = _row(conn, item_id)
    refusal = _use(conn, row, run_id=run_id, call_key=call_key, tool=tool, arguments=arguments)
    call = _Call(run_id, get_item(conn, item_id).task_id, tool, arguments)
    kind, decision = ("approval.used", "allow") if refusal is None else ("approval.refused", "deny")
    attempt = audit.arguments_sha256([call_key, arguments])[:32]  # a replayed call is recorded once, another anew
    _audit(conn, kind, call, "autodo", decision, f"approval.consumed:{item_id}:{attempt}", item_id=item_id, why=refusal)
    return refusal


def _use(
    conn: sa.Connection, row: Any, *, run_id: str, call_key: str, tool: str, arguments: dict[str, Any]
) -> str | None:
    """Mark the approval used by this call; or say why it does not allow the call."""
    item_id = row.item_id
    if row.decision == Decision.DENIED.value:
        return f"the person denied this call: {row.reason}"
    if row.decision == Decision.EXPIRED.value:
        return "the approval request expired before the person decided; the call was not made"
    if row.decision != Decision.APPROVED.value:
        return f"the call is not approved (it is {row.decision})"
    if row.run_id != run_id or row.call_key != call_key or row.arguments_hash != arguments_hash(tool, arguments):
        return "refused: the approval was given for a different call or different arguments"
    used = conn.execute(
        approvals.update().where(approvals.c.item_id == item_id, approvals.c.used_at.is_(None)).values(used_at=now())
    )
    if used.rowcount != 1:
        return "refused: this approval was already used; an approval allows one call"
    return None


def _audit_decision(conn: sa.Connection, kind: str, row: Any, actor: str, **details: str | None) -> None:
    """A decision on a request in the audit log (once per request and kind)."""
    call = _Call(row.run_id, get_item(conn, row.item_id).task_id, row.tool, row.arguments)
    decision = "allow" if kind == "approval.approved" else "deny"
    _audit(conn, kind, call, actor, decision, f"{kind}:{row.item_id}", item_id=row.item_id, rule=row.rule, **details)


def _audit(
    conn: sa.Connection, kind: str, call: _Call, actor: str, decision: str, key: str, **details: str | None
) -> None:
    """The step in the audit log: who decided, on which run and tool, and the arguments' hash."""
    profile = conn.execute(sa.select(runs.c.profile).where(runs.c.id == call.run_id)).scalar()
    details = {name: value for name, value in details.items() if value is not None}
    audit.record(
        conn, kind, actor=actor, task_id=call.task_id, run_id=call.run_id, agent=profile, tool=call.tool,
        decision=decision, details={**details, **audit.describe_arguments(call.arguments)}, key=key,
    )  # fmt: skip


def _row(conn: sa.Connection, item_id: str) -> Any:
    row = conn.execute(sa.select(approvals).where(approvals.c.item_id == item_id)).first()
    if row is None:
        raise NotFound(f"no approval request {item_id}; `autodo inbox` lists the open ones")
    return row
