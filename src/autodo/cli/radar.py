"""`autodo radar …`: feedback in, ranked and de-duplicated clusters and tasks out."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from autodo.cli import render
from autodo.cli.app import emit_json, json_option, reports_errors
from autodo.desk import Desk


@click.group()
def radar() -> None:
    """The feedback radar: import or pull what users say, see the clusters and their tasks."""


@radar.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["csv", "jsonl", "reddit", "x", "hn", "appstore", "play", "github", "mbox"]),
)
@click.option("--id-column", default="id", show_default=True, help="csv/jsonl: the column with a unique id.")
@click.option("--text-column", default="text", show_default=True, help="csv/jsonl: the column with the feedback.")
@click.option("--title-column", default=None, help="csv/jsonl: a title column.")
@click.option("--author-column", default=None, help="csv/jsonl: who said it (hashed on import).")
@click.option("--time-column", default=None, help="csv/jsonl: when (ISO 8601 or epoch seconds).")
@click.option("--url-column", default=None)
@click.option("--rating-column", default=None, help="csv/jsonl: stars, 1-5.")
@json_option
@reports_errors
def import_file(path: Path, fmt: str, as_json: bool, **columns: str | None) -> None:
    """Load a file of feedback, then update the clusters and their tasks."""
    from autodo.radar.formats import ColumnMap
    from autodo.radar.service import Radar

    mapping = ColumnMap(**{name.removesuffix("_column"): value for name, value in columns.items() if value})
    report = Radar(Desk()).import_file(path, fmt, mapping if fmt in ("csv", "jsonl") else None)
    emit_json(report) if as_json else render.radar_report(report)


@radar.command("add-source")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["reddit", "x", "hn", "appstore", "github"]))
@click.option("--subreddit", default=None)
@click.option("--query", default=None, help="x and hn: the search query.")
@click.option("--app-id", default=None, help="appstore: the app's numeric id.")
@click.option("--country", default="us", show_default=True, help="appstore: the store's country code.")
@click.option("--repo", default=None, help="github: OWNER/REPO.")
@click.option("--base-url", default=None, help="Another host speaking the same API (a mirror, a test server).")
@click.option("--token-env", default=None, help="The environment variable holding the token (x, github).")
@reports_errors
def add_source(name: str, kind: str, repo: str | None, **options: str | None) -> None:
    """Remember a channel to pull from (`autodo radar pull` reads every source)."""
    from autodo.radar.service import Radar

    owner, _, name_of_repo = (repo or "").partition("/")
    config = {key: value for key, value in options.items() if value is not None}
    if repo:
        config.update(owner=owner, repo=name_of_repo)
    Radar(Desk()).add_source(name, kind, config)
    click.echo(f"source {name} ({kind}) saved; `autodo radar pull` reads it")


@radar.command()
@click.argument("names", nargs=-1)
@json_option
@reports_errors
def pull(names: tuple[str, ...], as_json: bool) -> None:
    """Fetch what is new from every source (or the named ones), then update clusters and tasks."""
    from autodo.radar.service import Radar

    service = Radar(Desk())
    with Progress(console=render.console, transient=True, disable=as_json) as progress:
        bar = progress.add_task("pulling", total=None)
        report = service.pull(list(names), on_source=lambda name: progress.update(bar, description=f"pulling {name}"))
    emit_json(report) if as_json else render.radar_report(report)


@radar.command()
@json_option
@reports_errors
def clusters(as_json: bool) -> None:
    """Clusters by score: what hurts most people most."""
    from autodo.radar.service import Radar

    found = Radar(Desk()).clusters()
    if as_json:
        emit_json(found)
        return
    table = Table("cluster", "score", "people", "items", "trend", "label", "task", box=None)
    for cluster in found:
        table.add_row(
            cluster.id, f"{cluster.score:.1f}", str(cluster.reporters), str(cluster.size),
            str(cluster.details.get("trend", "")), cluster.label, cluster.task_id or "",
        )  # fmt: skip
    render.console.print(table if found else "no clusters yet; `autodo radar import FILE --format …` loads feedback")


@radar.command()
@click.argument("cluster_id")
@json_option
@reports_errors
def show(cluster_id: str, as_json: bool) -> None:
    """A cluster with its score, quotes and items."""
    from autodo.radar.service import Radar

    detail = Radar(Desk()).cluster(cluster_id)
    emit_json(detail) if as_json else render.radar_cluster(detail)


@radar.command()
@click.argument("item_id")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 200))
@json_option
@reports_errors
def similar(item_id: str, top: int, as_json: bool) -> None:
    """The items nearest to one item, with scores (for reviewing duplicates)."""
    from autodo.radar.service import Radar

    found = Radar(Desk()).similar(item_id, top)
    if as_json:
        emit_json(found)
        return
    for neighbour in found:
        text = " ".join(neighbour.item.text.split())[:100]
        render.console.print(f"{neighbour.score:.3f}  {neighbour.item.id}  {text}")
