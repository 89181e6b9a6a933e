"""The radar's service functions: ingest feedback, keep clusters and their tasks up to date.

An import or pull stores the new items (idempotent by source id), embeds them, marks
duplicates, lets each new item join the nearest existing cluster when it is close enough,
clusters the rest among themselves, then re-labels and re-scores every cluster it touched. The
best clusters become tasks; a cluster with a task updates it, and one whose task is done and
which keeps growing reopens it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field

from autodo.desk import Desk
from autodo.errors import InvalidInput, NotFound
from autodo.radar import pipeline
from autodo.radar import store as radar_store
from autodo.radar.fetch import Source, fetch
from autodo.radar.formats import ColumnMap, parse
from autodo.radar.items import Item, Parsed
from autodo.radar.store import StoredItem, Vectors
from autodo.radar.tasks import sync_tasks

MAX_FILE = 512 * 1024 * 1024  # bytes; a bigger export should be split


class ImportReport(BaseModel):
    """What an import or pull did, with every skipped item counted by reason."""

    added: int = 0
    refreshed: int = 0  # already imported: votes and ratings updated
    duplicates: int = 0  # new items that repeat an earlier one (their authors still count)
    skipped: dict[str, int] = Field(default_factory=dict)
    clusters_created: int = 0
    clusters_updated: int = 0
    tasks_created: list[str] = Field(default_factory=list)
    tasks_updated: list[str] = Field(default_factory=list)
    tasks_reopened: list[str] = Field(default_factory=list)


class ClusterView(BaseModel):
    id: str
    label: str
    size: int
    reporters: int
    score: float
    details: dict[str, Any]
    task_id: str | None
    item_ids: list[str]


class ClusterDetail(ClusterView):
    items: list[StoredItem]


class Neighbour(BaseModel):
    item: StoredItem
    score: float


class Radar:
    """The radar of one home, on the desk's store."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def import_file(self, path: Path, fmt: str, columns: ColumnMap | None = None) -> ImportReport:
        if path.stat().st_size > MAX_FILE:
            raise InvalidInput(f"{path} is larger than {MAX_FILE // 2**20} MB; split it and import the parts")
        return self.ingest(parse(fmt, path.read_bytes(), columns))

    def add_source(self, name: str, kind: str, config: dict[str, Any]) -> None:
        source = Source.model_validate({"kind": kind, **config})  # refuses what the kind cannot use
        with self.desk.engine.begin() as conn:
            radar_store.save_source(conn, name, kind, source.model_dump(exclude_defaults=True))

    def pull(self, names: list[str], on_source: Callable[[str], None] = lambda name: None) -> ImportReport:
        """Fetch what is new from the sources; a source that fails keeps its place for the next pull."""
        with self.desk.engine.connect() as conn:
            rows = [row for row in radar_store.sources(conn) if not names or row.name in names]
        if names and len(rows) != len(set(names)):
            known = ", ".join(row.name for row in rows) or "none"
            raise NotFound(
                f"unknown source among {', '.join(names)} (known here: {known}); see `autodo radar add-source`"
            )
        combined = Parsed()
        cursors: dict[str, Any] = {}
        with httpx.Client(follow_redirects=False) as client:
            for row in rows:
                on_source(row.name)
                result = fetch(Source.model_validate(row.config), client, row.cursor)
                combined.items.extend(result.parsed.items)
                combined.skipped.update({f"{row.name}: {k}": v for k, v in result.parsed.skipped.items()})
                cursors[row.name] = result.cursor
        report = self.ingest(combined)
        with self.desk.engine.begin() as conn:  # after the items are safe: a crash re-pulls, never skips
            for name, cursor in cursors.items():
                radar_store.advance_source(conn, name, cursor)
        return report

    def ingest(self, parsed: Parsed) -> ImportReport:
        """Store new items, update clusters and tasks; re-ingesting the same items changes nothing."""
        report = ImportReport(skipped=dict(parsed.skipped))
        with self.desk.engine.begin() as conn:
            fresh = self._store_items(conn, _unique(parsed.items), report)
            touched = self._cluster(conn, fresh, report)
            before = {row.id: row.reporters for row in radar_store.cluster_rows(conn)}
            self._rescore(conn, touched)
            sync_tasks(conn, report, before)
        return report

    def _store_items(self, conn: sa.Connection, items: list[Item], report: ImportReport) -> list[str]:
        """Insert the items not seen before (each linked to the earlier item it repeats, if any)."""
        known = radar_store.known_items(conn, items)
        new = [item for item in items if (item.source, item.source_id) not in known]
        for item in items:
            if (item.source, item.source_id) in known:
                radar_store.refresh_item(conn, known[(item.source, item.source_id)], item)
        report.refreshed = len(items) - len(new)
        if not new:
            return []
        vectors = pipeline.embed([item.text for item in new])
        kept, kept_vectors = radar_store.kept_items(conn)
        ids = [item.id for item in kept]
        for item, vector, original in zip(
            new, vectors, pipeline.duplicates(kept, kept_vectors, new, vectors), strict=True
        ):
            ids.append(radar_store.insert_item(conn, item, vector, None if original is None else ids[original]))
        report.added = len(new)
        report.duplicates = sum(1 for item_id in ids[len(kept) :] if radar_store.get_item(conn, item_id).duplicate_of)
        return ids[len(kept) :]

    def _cluster(self, conn: sa.Connection, item_ids: list[str], report: ImportReport) -> set[str]:
        """New items join the nearest cluster within the threshold; the rest form new clusters."""
        if not item_ids:
            return set()
        fresh = set(item_ids)
        kept, vectors = radar_store.kept_items(conn)
        old = [i for i, item in enumerate(kept) if item.id not in fresh]
        new = [i for i, item in enumerate(kept) if item.id in fresh]
        origin = radar_store.origin(conn)
        if origin is None:  # the first import sets the centre clusters are measured from
            origin = pipeline.origin_for(vectors)
            radar_store.save_origin(conn, origin)
        cluster_ids = sorted({cluster_id for i in old if (cluster_id := kept[i].cluster_id)})
        number = {cluster_id: n for n, cluster_id in enumerate(cluster_ids)}
        known = [i for i in old if kept[i].cluster_id in number]
        clustering = pipeline.rebuild(vectors[known], [number[kept[i].cluster_id or ""] for i in known], origin)
        joined, _ = pipeline.extend(clustering, vectors[new])
        while len(cluster_ids) <= max(joined, default=-1):
            cluster_ids.append(radar_store.new_cluster_id())
        assignments = {kept[i].id: cluster_ids[n] for i, n in zip(new, joined, strict=True)}
        assignments.update(self._repeats_follow(conn, item_ids, assignments))
        radar_store.set_clusters(conn, assignments)
        touched = set(assignments.values())
        report.clusters_created = len(touched - set(number))
        report.clusters_updated = len(touched & set(number))
        return touched

    def _repeats_follow(self, conn: sa.Connection, item_ids: list[str], assigned: dict[str, str]) -> dict[str, str]:
        """A repeat is in the cluster of the item it repeats."""
        follows = {}
        for item_id in item_ids:
            original = radar_store.get_item(conn, item_id).duplicate_of
            if original is not None:
                cluster_id = assigned.get(original) or radar_store.get_item(conn, original).cluster_id
                if cluster_id is not None:
                    follows[item_id] = cluster_id
        return follows

    def _rescore(self, conn: sa.Connection, cluster_ids: set[str]) -> None:
        """Label, centroid, score and evidence of each changed cluster (labels contrast with all clusters)."""
        if not cluster_ids:
            return
        kept, _ = radar_store.kept_items(conn)
        clustered = [item for item in kept if item.cluster_id]
        order = sorted({item.cluster_id or "" for item in clustered})
        names = pipeline.labels(
            [item.text for item in clustered], [order.index(item.cluster_id or "") for item in clustered]
        )
        at = datetime.now(UTC)
        for cluster_id in cluster_ids:
            members = radar_store.items_of(conn, cluster_id)
            vectors = radar_store.vectors_of(conn, [item.id for item in members])
            centroid = _unit(vectors.mean(axis=0))
            label = names[order.index(cluster_id)] if cluster_id in order else ""
            radar_store.save_cluster(conn, cluster_id, pipeline.summarize(list(members), vectors, centroid, label, at))

    def clusters(self) -> list[ClusterView]:
        with self.desk.engine.connect() as conn:
            return [_view(conn, row) for row in radar_store.cluster_rows(conn)]

    def cluster(self, cluster_id: str) -> ClusterDetail:
        with self.desk.engine.connect() as conn:
            view = _view(conn, radar_store.cluster_row(conn, cluster_id))
            return ClusterDetail(**view.model_dump(), items=radar_store.items_of(conn, cluster_id))

    def similar(self, item_id: str, top: int = 10) -> list[Neighbour]:
        """The items most like this one (MiniLM and TF-IDF similarity together), best first."""
        with self.desk.engine.connect() as conn:
            radar_store.get_item(conn, item_id)
            ids, vectors = radar_store.all_vectors(conn)
            texts = radar_store.texts_of(conn, ids)
            ranked = pipeline.nearest(ids.index(item_id), texts, vectors, top)  # repeats included: they are the point
            return [Neighbour(item=radar_store.get_item(conn, ids[index]), score=score) for index, score in ranked]


def _unit(vector: Vectors) -> Vectors:
    unit: Vectors = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
    return unit


def _unique(items: list[Item]) -> list[Item]:
    """The last copy of each (source, source id): one import can carry an item twice across pages."""
    return list({(item.source, item.source_id): item for item in items}.values())


def _view(conn: sa.Connection, row: Any) -> ClusterView:
    item_ids = [item.id for item in radar_store.items_of(conn, row.id)]
    return ClusterView(
        id=row.id, label=row.label, size=row.size, reporters=row.reporters, score=row.score,
        details=row.details, task_id=row.task_id, item_ids=item_ids,
    )  # fmt: skip
