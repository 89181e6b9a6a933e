"""Pure parsers from a channel's bytes to items: one per format, and one registry of them all.

A parser raises ``InvalidInput`` only when the whole file is unreadable (not JSON, wrong
encoding, not the format at all). A bad item inside a good file is skipped and counted in
``Parsed.skipped`` under a readable reason; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable

from autodo.errors import InvalidInput
from autodo.radar.formats._common import (
    BAD_DATE,
    BAD_LINE,
    BAD_ZSTD,
    BOT,
    DELETED,
    DUPLICATE_ID,
    EMPTY_TEXT,
    MISSING_ID,
    TOO_LONG,
    parse_time,
)
from autodo.radar.formats.appstore import parse_appstore
from autodo.radar.formats.github import parse_github
from autodo.radar.formats.hn import parse_hn
from autodo.radar.formats.mail import parse_mbox
from autodo.radar.formats.play import parse_play
from autodo.radar.formats.reddit import parse_reddit
from autodo.radar.formats.table import ColumnMap, TableFormat, parse_table
from autodo.radar.formats.x_api import parse_x
from autodo.radar.items import Parsed

Parser = Callable[[bytes], Parsed]


def parse_csv(data: bytes) -> Parsed:
    """A CSV file with the default column map: ``id`` and ``text``."""
    return parse_table(data, "csv", ColumnMap())


def parse_jsonl(data: bytes) -> Parsed:
    """JSON Lines with the default column map: ``id`` and ``text``."""
    return parse_table(data, "jsonl", ColumnMap())


FORMATS: dict[str, Parser] = {
    "csv": parse_csv,
    "jsonl": parse_jsonl,
    "reddit": parse_reddit,
    "x": parse_x,
    "hn": parse_hn,
    "appstore": parse_appstore,
    "play": parse_play,
    "github": parse_github,
    "mbox": parse_mbox,
}
TABLE_FORMATS: dict[str, TableFormat] = {"csv": "csv", "jsonl": "jsonl"}


def parse(fmt: str, data: bytes, columns: ColumnMap | None = None) -> Parsed:
    """Parse ``data`` as ``fmt``; ``columns`` maps the columns of a csv or jsonl import."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt in TABLE_FORMATS:
        return parse_table(data, TABLE_FORMATS[fmt], columns or ColumnMap())
    if columns is not None:
        raise InvalidInput(f"a column map only applies to csv and jsonl, not to {fmt}")
    return FORMATS[fmt](data)


__all__ = [
    "BAD_DATE",
    "BAD_LINE",
    "BAD_ZSTD",
    "BOT",
    "DELETED",
    "DUPLICATE_ID",
    "EMPTY_TEXT",
    "FORMATS",
    "MISSING_ID",
    "TOO_LONG",
    "ColumnMap",
    "Parser",
    "TableFormat",
    "parse",
    "parse_appstore",
    "parse_csv",
    "parse_github",
    "parse_hn",
    "parse_jsonl",
    "parse_mbox",
    "parse_play",
    "parse_reddit",
    "parse_table",
    "parse_time",
    "parse_x",
]
