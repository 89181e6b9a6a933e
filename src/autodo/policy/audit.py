"""The audit log: every decision and action, appended to one tamper-evident hash chain.

Each record's hash covers its fields, its number and the previous record's hash, so an edited
record breaks its own hash and a deleted one breaks the numbering. Cutting records off the end
leaves a valid chain, so every append also anchors the head (number and hash) outside the table:
in ``$AUTODO_HOME/audit-head`` on the machine that appended, and as an ``audit.head`` event, which
a webhook can carry off the host. ``verify`` checks the chain against both.

Appends are serialized so two writers never fork the chain: PostgreSQL takes a transaction-level
advisory lock and SQLite its single write lock before the head is read; both hold until commit.

A record never holds a secret's value or a call's raw arguments: arguments become their SHA-256
and a clipped summary with secret-looking values redacted. Control characters in text are
escaped, so words from a task or a model cannot forge log lines or drive a terminal.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from autodo.config import Settings
from autodo.events import append_event
from autodo.store import now
from autodo.store.schema import audit_log, events

AUDIT_TASK_ID = "audit"  # events need a task id; events.task_id has no foreign key and no task has this one
HEAD_EVENT = "audit.head"
HEAD_FILE = "audit-head"
GENESIS = "0" * 64  # what record 1 links to
SUMMARY_LIMIT = 500  # characters of an argument summary or a target
DETAIL_LIMIT = 2000  # characters of any other text in details
REDACTED = "[redacted]"
HASHED_FIELDS = (
    "seq", "at", "actor", "kind", "task_id", "run_id", "agent", "tool", "decision", "target", "details", "key",
    "prev_hash",
)  # fmt: skip

_LOCK_ID = 0x6175646974  # "audit": the advisory lock that serializes appends on PostgreSQL
_PENDING_HEAD = "autodo.audit.pending_head"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SECRET_NAME = re.compile(
    r"secret|token|passw|api.?key|authorization|credential|cookie|private.?key|^auth$", re.IGNORECASE
)
_SECRET_VALUE = re.compile(r"(?i)(bearer\s+|(?:token|password|passwd|secret|api.?key)=)[^\s&\"']+")


class AuditRecord(BaseModel):
    """One entry of the chain."""

    seq: int
    at: str
    actor: str
    kind: str
    task_id: str | None = None
    run_id: str | None = None
    agent: str | None = None  # the profile
    tool: str | None = None
    decision: str | None = None  # allow, ask or deny; None for a plain action
    target: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    key: str | None = None
    prev_hash: str
    hash: str


class Verdict(BaseModel):
    """What ``verify`` found: OK with the count, or the first bad record and why."""

    ok: bool
    records: int
    bad_seq: int | None = None
    problem: str | None = None
    anchors: list[str] = Field(default_factory=list)  # what the head was checked against
    notes: list[str] = Field(default_factory=list)


def record(
    conn: sa.Connection,
    kind: str,
    *,
    actor: str,
    task_id: str | None = None,
    run_id: str | None = None,
    agent: str | None = None,
    tool: str | None = None,
    decision: str | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> AuditRecord | None:
    """Append a record in the caller's transaction; None when ``key`` was recorded before (replayed code)."""
    _lock_chain(conn)
    if key is not None and conn.execute(sa.select(audit_log.c.seq).where(audit_log.c.key == key)).first():
        return None
    texts = {
        "actor": actor, "kind": kind, "task_id": task_id, "run_id": run_id, "agent": agent, "tool": tool,
        "decision": decision, "target": target,
    }  # fmt: skip
    seq, prev_hash = _chain_head(conn)
    fields: dict[str, Any] = {name: _fit(name, value) for name, value in texts.items()}
    fields |= {"seq": seq + 1, "at": now(), "details": _clean(details or {}), "key": key, "prev_hash": prev_hash}
    entry = AuditRecord.model_validate({**fields, "hash": record_hash(fields)})
    conn.execute(audit_log.insert().values(**entry.model_dump()))
    _anchor(conn, entry)
    return entry


def describe_arguments(arguments: Any) -> dict[str, str]:
    """What a record keeps of a call's arguments: their SHA-256 and a clipped, redacted summary."""
    if isinstance(arguments, str):
        arguments = _parsed(arguments)
    shown = json.dumps(redact(arguments), ensure_ascii=False, default=str)
    return {"args_sha256": arguments_sha256(arguments), "args": clip(escape_control(shown), SUMMARY_LIMIT)}


def arguments_sha256(arguments: Any) -> str:
    return hashlib.sha256(canonical_json(arguments)).hexdigest()


def redact(value: Any) -> Any:
    """``value`` with secret-looking entries (a ``token`` key, ``Bearer …``, ``password=…``) replaced."""
    if isinstance(value, Mapping):
        return {key: REDACTED if _SECRET_NAME.search(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(lambda match: match.group(1) + REDACTED, value)
    return value


def escape_control(text: str) -> str:
    """``text`` with control, line-separator and bidi characters written as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text)} chars]"


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str).encode()


def record_hash(fields: Mapping[str, Any]) -> str:
    """The hash of a record: its fields, its number and the link to the one before."""
    return hashlib.sha256(canonical_json({name: fields[name] for name in HASHED_FIELDS})).hexdigest()


def _fit(column: str, value: str | None) -> str | None:
    """Text escaped and cut to its column (a longer value would fail the insert on PostgreSQL)."""
    if value is None:
        return None
    length = getattr(audit_log.c[column].type, "length", None) or SUMMARY_LIMIT
    return escape_control(value)[:length]


def _clean(value: Any) -> Any:
    """A JSON value with every string escaped and clipped, keys too, and no NaN or infinity."""
    if isinstance(value, Mapping):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return clip(escape_control(str(value)), DETAIL_LIMIT)


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a model's malformed arguments are hashed as they came


def _lock_chain(conn: sa.Connection) -> None:
    """Hold the chain until this transaction ends, so no other writer reads the same head."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_ID)))
    else:
        # pysqlite opens a transaction only at the first write: this write of nothing takes
        # SQLite's write lock now, before the head is read, instead of at the insert.
        conn.execute(audit_log.update().where(sa.false()).values(seq=audit_log.c.seq))


def _chain_head(conn: sa.Connection) -> tuple[int, str]:
    """The latest record's number and hash (0 and GENESIS on an empty log)."""
    query = sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    row = conn.execute(query).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def _anchor(conn: sa.Connection, entry: AuditRecord) -> None:
    """Publish the new head: as an event in this transaction, to the head file when it commits."""
    head = {"seq": entry.seq, "hash": entry.hash}
    append_event(conn, AUDIT_TASK_ID, HEAD_EVENT, head, key=f"{HEAD_EVENT}:{entry.seq}:{entry.hash}")
    conn.info[_PENDING_HEAD] = {**head, "at": entry.at}


def _write_pending_head(conn: sa.Connection) -> None:
    # SQLAlchemy calls this just before the commit, with the chain lock still held: head files
    # are written in chain order, and a transaction that rolls back never writes one.
    head = conn.info.pop(_PENDING_HEAD, None)
    if head is not None:
        write_head_file(head_file(Settings().home), head)


def _drop_pending_head(conn: sa.Connection, *_savepoint: Any) -> None:
    # After a savepoint rolls back the head may be an undone record: leave the file behind instead.
    conn.info.pop(_PENDING_HEAD, None)


sa.event.listen(sa.Engine, "commit", _write_pending_head)
sa.event.listen(sa.Engine, "rollback", _drop_pending_head)
sa.event.listen(sa.Engine, "rollback_savepoint", _drop_pending_head)


def head_file(home: Path) -> Path:
    return home / HEAD_FILE


def write_head_file(path: Path, head: Mapping[str, Any]) -> None:
    """Replace the head file atomically, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with open(temporary, "w") as file:
        file.write(json.dumps(dict(head)) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def list_records(
    engine: sa.Engine,
    *,
    task_id: str | None = None,
    agent: str | None = None,
    tool: str | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """The latest ``limit`` records matching every filter given, oldest first."""
    query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    for column, value in (("task_id", task_id), ("agent", agent), ("tool", tool)):
        if value is not None:
            query = query.where(audit_log.c[column] == value)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [AuditRecord.model_validate(dict(row._mapping)) for row in reversed(rows)]


class _Broken(Exception):
    """The first thing wrong with the log: the record where it shows, and what it means."""

    def __init__(self, seq: int | None, message: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.message = message


@dataclass(frozen=True)
class _Anchor:
    source: str
    seq: int
    hash: str
    exact: bool  # the head must be this record, not merely contain it


def verify(engine: sa.Engine, home: Path) -> Verdict:
    """Check every hash, the numbering and links, and the end of the log against its anchors."""
    path = head_file(home)
    heads = _read_heads(engine, path)
    try:
        anchors = _anchors(heads, path)
        hashes = _check_chain(engine, heads.end, {anchor.seq for anchor in anchors})
        for anchor in anchors:
            _check_anchor(anchor, heads.end, hashes)
    except _Broken as broken:
        return Verdict(ok=False, records=heads.count, bad_seq=broken.seq, problem=broken.message)
    missing = f"no head file at {path}: nothing was appended from this home, or the file was deleted"
    notes = [] if heads.file_text is not None or heads.count == 0 else [missing]
    return Verdict(ok=True, records=heads.count, anchors=[anchor.source for anchor in anchors], notes=notes)


@dataclass(frozen=True)
class _Heads:
    count: int
    end: int  # the last record's number
    event: Any  # the latest audit.head event's data
    file_text: str | None


def _read_heads(engine: sa.Engine, path: Path) -> _Heads:
    """The count, the last number and both anchors as they are, read while no append is half done."""
    with engine.begin() as conn:
        _lock_chain(conn)  # an append writes the head file just before it commits: wait for that commit
        count = int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one())
        query = sa.select(events.c.data).where(events.c.kind == HEAD_EVENT).order_by(events.c.seq.desc()).limit(1)
        event = conn.execute(query).scalar()
        file_text = path.read_text() if path.exists() else None
        return _Heads(count, _chain_head(conn)[0], event, file_text)


def _anchors(heads: _Heads, path: Path) -> list[_Anchor]:
    anchors = []
    if heads.event is not None:
        anchors.append(_parse_anchor("the latest audit.head event", heads.event, exact=True))
    elif heads.end > 0:
        raise _Broken(heads.end, "no audit.head event anchors the log: the events were deleted")
    if heads.file_text is not None:
        anchors.append(_parse_anchor(f"the head file {path}", _parsed(heads.file_text), exact=False))
    return anchors


def _parse_anchor(source: str, data: Any, *, exact: bool) -> _Anchor:
    if not (isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("hash"), str)):
        raise _Broken(None, f"{source} is not a head (seq and hash): it was tampered with")
    return _Anchor(source, data["seq"], data["hash"], exact)


def _check_chain(engine: sa.Engine, end: int, wanted: set[int]) -> dict[int, str]:
    """Walk records 1…end; return the hashes of the ``wanted`` ones."""
    hashes: dict[int, str] = {}
    expected, prev_hash = 1, GENESIS
    query = sa.select(audit_log).where(audit_log.c.seq <= end).order_by(audit_log.c.seq)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=1000).execute(query):
            fields = dict(row._mapping)
            _check_record(fields, expected, prev_hash)
            if fields["seq"] in wanted:
                hashes[fields["seq"]] = fields["hash"]
            expected, prev_hash = fields["seq"] + 1, fields["hash"]
    if expected <= end:
        raise _Broken(expected, f"records {expected} to {end} are missing: they were deleted")
    return hashes


def _check_record(fields: dict[str, Any], expected: int, prev_hash: str) -> None:
    seq = fields["seq"]
    if seq != expected:
        raise _Broken(expected, f"record {expected} is missing (the next is {seq}): it was deleted")
    if record_hash(fields) != fields["hash"]:
        raise _Broken(seq, f"record {seq} was altered: its contents do not match its hash")
    if fields["prev_hash"] != prev_hash:
        before = f"record {seq - 1}" if seq > 1 else "the start of the chain"
        raise _Broken(seq, f"record {seq} does not link to {before}: a record was replaced")


def _check_anchor(anchor: _Anchor, end: int, hashes: dict[int, str]) -> None:
    if anchor.seq > end:
        raise _Broken(
            end + 1,
            f"the log ends at record {end} but {anchor.source} names record {anchor.seq}: records were cut off the end",
        )
    if anchor.exact and anchor.seq < end:
        raise _Broken(
            anchor.seq + 1,
            f"records after {anchor.seq} are not anchored by {anchor.source}: autodo did not append them",
        )
    if anchor.seq > 0 and hashes.get(anchor.seq) != anchor.hash:
        raise _Broken(
            anchor.seq, f"record {anchor.seq} is not the one {anchor.source} names: the end of the log was replaced"
        )
