"""The radar through the API: clusters, similar items, and an endpoint that takes pushed feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from autodo.radar.items import Item, Parsed, hash_author
from autodo.radar.service import ClusterDetail, ClusterView, ImportReport, Neighbour, Radar
from autodo.server.api import Id, Text, desk_of

router = APIRouter(prefix="/api/v1/radar", tags=["radar"])


class PushedItem(BaseModel):
    """One piece of feedback from a tool that pushes (a support desk, a form, a script)."""

    source: Annotated[Text, Field(min_length=1, max_length=20, pattern=r"^[a-z0-9_-]+$")]
    source_id: Annotated[Text, Field(min_length=1, max_length=200)]
    text: Annotated[Text, Field(max_length=100_000, description="What the person said.")]
    title: Annotated[Text, Field(max_length=2000)] = ""
    author: Annotated[Text, Field(max_length=500)] | None = Field(default=None, description="Hashed on arrival.")
    at: datetime | None = None
    url: Annotated[Text, Field(max_length=2000)] | None = None
    rating: Annotated[float, Field(ge=1, le=5)] | None = None
    engagement: Annotated[int, Field(ge=0, le=10**9)] = 0
    thread: Annotated[Text, Field(max_length=200)] | None = None

    def to_item(self) -> Item:
        fields = self.model_dump(exclude={"text", "author"})
        return Item(**fields, body=self.text, author=hash_author(self.source, self.author))


class Push(BaseModel):
    items: list[PushedItem] = Field(min_length=1, max_length=5000)


def radar_of(request: Request) -> Radar:
    return Radar(desk_of(request))


@router.get("/clusters")
def clusters(request: Request) -> list[ClusterView]:
    """Clusters by score, each with its member item ids and its task."""
    return radar_of(request).clusters()


@router.get("/clusters/{cluster_id}")
def cluster(request: Request, cluster_id: Id) -> ClusterDetail:
    return radar_of(request).cluster(cluster_id)


@router.get("/items/{item_id}/similar")
def similar(request: Request, item_id: Id, top: Annotated[int, Query(ge=1, le=200)] = 10) -> list[Neighbour]:
    """The items nearest to one item, with scores (for reviewing duplicates)."""
    return radar_of(request).similar(item_id, top)


@router.post("/items")
def push(request: Request, body: Push) -> ImportReport:
    """Take pushed feedback (idempotent by source and id), then update clusters and their tasks."""
    items = [pushed.to_item() for pushed in body.items]
    return radar_of(request).ingest(Parsed(items=items))
