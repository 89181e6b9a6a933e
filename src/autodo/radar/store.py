"""Reading and writing the radar's items, clusters and sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from ulid import ULID

from autodo.errors import NotFound
from autodo.radar.items import Item
from autodo.store import now
from autodo.store.schema import radar_clusters, radar_items, radar_sources, radar_state

Vectors = NDArray[np.float32]
DIMENSIONS = 384


class StoredItem(Item):
    id: str
    cluster_id: str | None
    duplicate_of: str | None


def known_items(conn: sa.Connection, items: list[Item]) -> dict[tuple[str, str], str]:
    """The ids of items already imported, by (source, source id)."""
    known: dict[tuple[str, str], str] = {}
    for source in {item.source for item in items}:
        ids = [item.source_id for item in items if item.source == source]
        for start in range(0, len(ids), 500):
            query = sa.select(radar_items.c.id, radar_items.c.source_id).where(
                radar_items.c.source == source, radar_items.c.source_id.in_(ids[start : start + 500])
            )
            known.update({(source, source_id): item_id for item_id, source_id in conn.execute(query)})
    return known


def refresh_item(conn: sa.Connection, item_id: str, item: Item) -> None:
    """A re-imported item keeps its place; only what changes over time (votes, rating) is updated."""
    values = dict(engagement=item.engagement, rating=item.rating)
    conn.execute(radar_items.update().where(radar_items.c.id == item_id).values(**values))


def insert_item(conn: sa.Connection, item: Item, vector: Vectors, duplicate_of: str | None) -> str:
    item_id = str(ULID())
    embedding = vector.astype(np.float32).tobytes()
    values = dict(_item_values(item), embedding=embedding, duplicate_of=duplicate_of, imported_at=now())
    conn.execute(radar_items.insert().values(id=item_id, **values))
    return item_id


def _item_values(item: Item) -> dict[str, Any]:
    values = item.model_dump(exclude={"at"})
    values["at"] = item.at.isoformat() if item.at else None
    return values


def set_clusters(conn: sa.Connection, assignments: dict[str, str]) -> None:
    for item_id, cluster_id in assignments.items():
        conn.execute(radar_items.update().where(radar_items.c.id == item_id).values(cluster_id=cluster_id))


def all_vectors(conn: sa.Connection) -> tuple[list[str], Vectors]:
    """Every item's id and embedding (one row each), in import order."""
    rows = conn.execute(sa.select(radar_items.c.id, radar_items.c.embedding).order_by(radar_items.c.id)).all()
    if not rows:
        return [], np.zeros((0, DIMENSIONS), dtype=np.float32)
    return [row.id for row in rows], np.vstack([np.frombuffer(row.embedding, dtype=np.float32) for row in rows])


def texts_of(conn: sa.Connection, item_ids: list[str]) -> list[str]:
    """Each item's text (title and body), in the order of ``item_ids``."""
    rows = {
        row.id: f"{row.title}\n{row.body}".strip()
        for row in conn.execute(sa.select(radar_items.c.id, radar_items.c.title, radar_items.c.body))
    }
    return [rows[item_id] for item_id in item_ids]


def items_of(conn: sa.Connection, cluster_id: str) -> list[StoredItem]:
    query = sa.select(radar_items).where(radar_items.c.cluster_id == cluster_id).order_by(radar_items.c.id)
    return [_stored(row) for row in conn.execute(query)]


def get_item(conn: sa.Connection, item_id: str) -> StoredItem:
    row = conn.execute(sa.select(radar_items).where(radar_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no radar item {item_id}; `autodo radar clusters --json` lists the item ids")
    return _stored(row)


def _stored(row: Any) -> StoredItem:
    data = dict(row._mapping)
    data.pop("embedding")
    data.pop("imported_at")
    data["at"] = datetime.fromisoformat(data["at"]) if data["at"] else None
    return StoredItem.model_validate(data)


def vectors_of(conn: sa.Connection, item_ids: list[str]) -> Vectors:
    rows = dict(
        conn.execute(sa.select(radar_items.c.id, radar_items.c.embedding).where(radar_items.c.id.in_(item_ids))).all()
    )
    return np.vstack([np.frombuffer(rows[item_id], dtype=np.float32) for item_id in item_ids])


def new_cluster_id() -> str:
    return str(ULID())


def save_cluster(conn: sa.Connection, cluster_id: str, values: dict[str, Any]) -> None:
    """Insert or update a cluster's label, centroid, counts, score and details."""
    values = {**values, "updated_at": now()}
    if isinstance(values.get("centroid"), np.ndarray):
        values["centroid"] = values["centroid"].astype(np.float32).tobytes()
    exists = conn.execute(sa.select(radar_clusters.c.id).where(radar_clusters.c.id == cluster_id)).first()
    if exists:
        conn.execute(radar_clusters.update().where(radar_clusters.c.id == cluster_id).values(**values))
    else:
        conn.execute(radar_clusters.insert().values(id=cluster_id, created_at=now(), **values))


def cluster_row(conn: sa.Connection, cluster_id: str) -> Any:
    row = conn.execute(sa.select(radar_clusters).where(radar_clusters.c.id == cluster_id)).first()
    if row is None:
        raise NotFound(f"no radar cluster {cluster_id}; `autodo radar clusters` lists them")
    return row


def cluster_rows(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(radar_clusters).order_by(radar_clusters.c.score.desc())))


def sources(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(radar_sources).order_by(radar_sources.c.name)))


def save_source(conn: sa.Connection, name: str, kind: str, config: dict[str, Any]) -> None:
    exists = conn.execute(sa.select(radar_sources.c.name).where(radar_sources.c.name == name)).first()
    if exists:
        conn.execute(radar_sources.update().where(radar_sources.c.name == name).values(kind=kind, config=config))
    else:
        conn.execute(radar_sources.insert().values(name=name, kind=kind, config=config, created_at=now()))


def advance_source(conn: sa.Connection, name: str, cursor: Any) -> None:
    conn.execute(radar_sources.update().where(radar_sources.c.name == name).values(cursor=cursor, pulled_at=now()))


def kept_items(conn: sa.Connection) -> tuple[list[StoredItem], Vectors]:
    """Every item that is not a repeat of another, with its embedding, in import order."""
    query = sa.select(radar_items).where(radar_items.c.duplicate_of.is_(None)).order_by(radar_items.c.id)
    rows = list(conn.execute(query))
    vectors = [np.frombuffer(row.embedding, dtype=np.float32) for row in rows]
    return [_stored(row) for row in rows], (np.vstack(vectors) if vectors else np.zeros((0, DIMENSIONS), np.float32))


def origin(conn: sa.Connection) -> Vectors | None:
    row = conn.execute(sa.select(radar_state.c.value).where(radar_state.c.name == "origin")).first()
    return np.frombuffer(row.value, dtype=np.float32).copy() if row else None


def save_origin(conn: sa.Connection, vector: Vectors) -> None:
    conn.execute(radar_state.insert().values(name="origin", value=vector.astype(np.float32).tobytes()))
