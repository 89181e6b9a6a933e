"""The radar end to end: feedback files in, clusters and tasks out, kept up to date."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.errors import InvalidInput
from autodo.radar.formats import ColumnMap
from autodo.radar.service import Radar
from autodo.store.schema import radar_items
from autodo.tasks.model import Lane, State
from tests.support import ServedApp, autodo

CRASHES = [
    "The app crashes every time I upload a photo",
    "Uploading a picture makes the app crash immediately",
    "App closes itself when I try to upload photos",
    "Crash on photo upload, lost my draft again",
    "Every photo upload crashes the app on my phone",
    "the app crashed while uploading an image",
]
LOGIN = [
    "I can't log in, the two-factor code is always rejected",
    "Login fails: my 2FA code never works",
    "Cannot sign in because the authentication code is refused",
    "Two factor login keeps saying invalid code",
]
DARK_MODE = [
    "Please add a dark mode",
    "Would love a dark theme for night reading",
]


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text", "author", "url"])
        for row_id, text, author in rows:
            writer.writerow([row_id, text, author, f"https://support.example.test/t/{row_id}"])
    return path


def feedback(tmp_path: Path, name: str = "export.csv") -> Path:
    rows = [(f"c{n}", text, f"user{n}") for n, text in enumerate(CRASHES)]
    rows += [(f"l{n}", text, f"login{n}") for n, text in enumerate(LOGIN)]
    rows += [(f"d{n}", text, f"dark{n}") for n, text in enumerate(DARK_MODE)]
    rows += [(f"spam{n}", f"Login is broken again, attempt {n}", "same-person") for n in range(5)]
    return write_csv(tmp_path / name, rows)


COLUMNS = ColumnMap(id="id", text="text", author="author", url="url")


def test_an_import_makes_ranked_clusters_and_tasks_with_evidence(desk: Desk, tmp_path: Path) -> None:
    report = Radar(desk).import_file(feedback(tmp_path), "csv", COLUMNS)
    assert (report.added, report.refreshed) == (17, 0)
    clusters = Radar(desk).clusters()
    by_item = {item_id: cluster for cluster in clusters for item_id in cluster.item_ids}
    assert sum(cluster.size for cluster in clusters) == 17
    crash = by_item[_item_id(desk, "c0")]
    assert {_source_id(desk, i) for i in crash.item_ids} >= {f"c{n}" for n in range(6)}
    assert crash.reporters == 6 and clusters[0].id == crash.id  # most people, and a crash: ranked first
    login = by_item[_item_id(desk, "l0")]
    assert login.reporters <= 5  # four people and one who posted five times, counted once
    task = desk.task(crash.task_id or "").task
    assert task.source == "radar" and task.title.startswith("Fix: ") and "reported by 6 people" in task.title
    assert task.body.count("> ") >= 3 and "https://support.example.test/t/c" in task.body
    assert len(report.tasks_created) == sum(c.reporters >= 2 for c in clusters[:10])


def test_importing_the_same_file_again_changes_nothing(desk: Desk, tmp_path: Path) -> None:
    path = feedback(tmp_path)
    Radar(desk).import_file(path, "csv", COLUMNS)
    before = Radar(desk).clusters()
    again = Radar(desk).import_file(path, "csv", COLUMNS)
    assert (again.added, again.refreshed, again.tasks_created, again.tasks_updated) == (0, 17, [], [])
    assert [(c.id, c.size) for c in Radar(desk).clusters()] == [(c.id, c.size) for c in before]


def test_new_reports_join_their_cluster_and_update_its_task(desk: Desk, tmp_path: Path) -> None:
    Radar(desk).import_file(feedback(tmp_path), "csv", COLUMNS)
    crash = next(c for c in Radar(desk).clusters() if _item_id(desk, "c0") in c.item_ids)
    more = write_csv(tmp_path / "more.csv", [("c100", "Photo upload crashes the app for me too", "newcomer")])
    report = Radar(desk).import_file(more, "csv", COLUMNS)
    grown = Radar(desk).cluster(crash.id)
    assert (report.added, report.clusters_created, report.tasks_created) == (1, 0, [])
    assert grown.reporters == 7 and report.tasks_updated == [crash.task_id]
    assert "reported by 7 people" in desk.task(crash.task_id or "").task.title


def test_a_done_task_whose_cluster_keeps_growing_is_reopened(desk: Desk, tmp_path: Path) -> None:
    Radar(desk).import_file(feedback(tmp_path), "csv", COLUMNS)
    crash = next(c for c in Radar(desk).clusters() if _item_id(desk, "c0") in c.item_ids)
    assert crash.task_id is not None
    desk.move(crash.task_id, Lane.HUMAN)
    desk.done(crash.task_id, "fixed in 2.3")
    same = write_csv(tmp_path / "same.csv", [("c0", CRASHES[0], "user0")])
    assert Radar(desk).import_file(same, "csv", COLUMNS).tasks_reopened == []  # nothing new: stays done
    later = write_csv(tmp_path / "later.csv", [("c200", "Still crashing on photo upload after the update", "late")])
    report = Radar(desk).import_file(later, "csv", COLUMNS)
    task = desk.task(crash.task_id).task
    assert report.tasks_reopened == [crash.task_id] and task.state is State.NEW
    assert any(e.kind == "task.reopened" for e in desk.task(crash.task_id).events)


def test_bad_files_are_refused_or_skipped_with_reasons_and_lose_nothing(desk: Desk, tmp_path: Path) -> None:
    Radar(desk).import_file(feedback(tmp_path), "csv", COLUMNS)
    truncated = tmp_path / "cut.json"
    truncated.write_text('{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "a')
    with pytest.raises(InvalidInput, match="not JSON"):
        Radar(desk).import_file(truncated, "reddit")
    mixed = write_csv(
        tmp_path / "mixed.csv", [("x1", "", "a"), ("x2", "ok text about crashes", "b"), ("x2", "dup", "c")]
    )
    report = Radar(desk).import_file(mixed, "csv", COLUMNS)
    assert report.skipped and sum(report.skipped.values()) == 2
    assert sum(c.size for c in Radar(desk).clusters()) == 18  # the earlier 17 are all still there


def test_the_cli_imports_lists_shows_and_finds_similar_items(home: Path, tmp_path: Path) -> None:
    path = feedback(tmp_path)
    args = ["--id-column", "id", "--text-column", "text", "--author-column", "author", "--url-column", "url"]
    out = autodo(home, "radar", "import", str(path), "--format", "csv", *args).stdout
    assert "17 new items" in out
    clusters = json.loads(autodo(home, "radar", "clusters", "--json").stdout)
    top = clusters[0]
    assert top["item_ids"] and top["reporters"] == 6
    assert top["label"] in autodo(home, "radar", "show", top["id"]).stdout
    similar = json.loads(autodo(home, "radar", "similar", top["item_ids"][0], "--top", "3", "--json").stdout)
    assert len(similar) == 3 and similar[0]["score"] >= similar[-1]["score"]
    assert top["item_ids"][0] not in [n["item"]["id"] for n in similar]


def test_feedback_pushed_to_the_api_is_clustered(home: Path) -> None:
    items = [
        {"source": "forms", "source_id": f"f{n}", "text": text, "author": f"p{n}"} for n, text in enumerate(CRASHES[:4])
    ]
    with ServedApp() as served, served.client() as client:
        pushed = client.post("/api/v1/radar/items", json={"items": items})
        again = client.post("/api/v1/radar/items", json={"items": items})
        clusters = client.get("/api/v1/radar/clusters").json()
        page = client.get("/radar")
    assert pushed.status_code == 200 and pushed.json()["added"] == 4 and again.json()["refreshed"] == 4
    assert clusters[0]["reporters"] == 4 and clusters[0]["task_id"]
    assert page.status_code == 200 and clusters[0]["label"] in page.text


def _item_id(desk: Desk, source_id: str) -> str:
    with desk.engine.connect() as conn:
        return str(conn.execute(radar_items.select().where(radar_items.c.source_id == source_id)).one().id)


def _source_id(desk: Desk, item_id: str) -> str:
    with desk.engine.connect() as conn:
        return str(conn.execute(radar_items.select().where(radar_items.c.id == item_id)).one().source_id)
