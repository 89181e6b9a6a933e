"""Generic imports: CSV or JSON Lines exported from a support tool, read through a column map."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, as_int, decode_text, json_lines, raise_field_limit
from autodo.radar.items import Parsed

TableFormat = Literal["csv", "jsonl"]


class ColumnMap(BaseModel):
    """Which column holds what; ``id`` and ``text`` are required, the rest optional.

    For JSON Lines a column may be a dotted path into nested objects, such as ``requester.email``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = "id"
    text: str = "text"
    title: str | None = None
    author: str | None = None
    time: str | None = None
    url: str | None = None
    rating: str | None = None
    thread: str | None = None
    engagement: str | None = None

    def named(self) -> dict[str, str]:
        """Field name to column name, for the columns that are mapped."""
        return {name: column for name, column in self.model_dump().items() if column}


def parse_table(data: bytes, fmt: TableFormat, columns: ColumnMap) -> Parsed:
    """Items from a CSV file (UTF-8 or UTF-16) or JSON Lines, one row or line each."""
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput(f"unknown table format {fmt!r}: use 'csv' or 'jsonl'")
    if not data.strip(b"\xff\xfe\xef\xbb\xbf\x00 \t\r\n"):
        raise InvalidInput(f"the file is empty; expected {fmt} with columns {_listed(columns.named().values())}")
    collector = Collector(fmt)
    rows = _csv_rows(data, columns) if fmt == "csv" else _jsonl_rows(data, columns, collector.parsed)
    for row in rows:
        collector.add(_draft(row, columns))
    return collector.parsed


def _csv_rows(data: bytes, columns: ColumnMap) -> Iterator[dict[str, Any]]:
    raise_field_limit()
    reader = csv.DictReader(io.StringIO(decode_text(data, "the CSV file"), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header  # exports often pad names with spaces
    missing = [column for column in columns.named().values() if column not in header]
    if missing:
        raise InvalidInput(f"column {_listed(missing)} not in the CSV header (columns: {_listed(header)})")
    try:
        yield from reader
    except csv.Error as error:
        raise InvalidInput(f"broken CSV at line {reader.line_num}: {error}") from error


def _jsonl_rows(data: bytes, columns: ColumnMap, parsed: Parsed) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    lines = 0
    for line in json_lines(data, parsed):
        lines += 1
        seen.update(column for column in columns.named().values() if _lookup(line, column) is not None)
        yield line
    # JSON Lines has no header: a mapped key that is in no line at all is a mapping mistake.
    missing = [column for column in columns.named().values() if column not in seen]
    if lines and missing:
        raise InvalidInput(f"key {_listed(missing)} is in no line of the JSON Lines file; check the column map")


def _draft(row: dict[str, Any], columns: ColumnMap) -> Draft:
    def cell(name: str | None) -> Any:
        return _lookup(row, name) if name else None

    return Draft(
        source_id=cell(columns.id),
        title=cell(columns.title),
        body=cell(columns.text),
        at=cell(columns.time),
        author=cell(columns.author),
        url=str(cell(columns.url) or "") or None,
        rating=cell(columns.rating),
        engagement=as_int(cell(columns.engagement)),
        thread=cell(columns.thread),
        needs_body=True,
    )


def _lookup(row: dict[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    value: Any = row
    for key in column.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)
