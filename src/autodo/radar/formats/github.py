"""GitHub issues and issue comments, from the REST API's JSON (pull requests are skipped)."""

from __future__ import annotations

import re
from typing import Any

from autodo.errors import InvalidInput
from autodo.radar.formats._common import BOT, JSON, Collector, Draft, as_dict, as_int, as_list, load_json
from autodo.radar.items import Parsed

LABEL = "a GitHub issues or issue-comments array"
PULL_REQUEST = "pull request"
PULL_REQUEST_COMMENT = "comment on a pull request"
NOT_ISSUE = "not an issue or comment"
_ISSUE_URL = re.compile(r"(?:/repos/|github\.com/)([^/]+/[^/]+)/(?:issues|pulls?)/(\d+)")


def parse_github(data: bytes) -> Parsed:
    """Issues and comments: an array of either (or both), or ``{"issues": [...], "comments": [...]}``."""
    records = _records(load_json(data, LABEL))
    collector = Collector("github")
    pull_threads = pull_request_threads(records)
    for record in records:
        _add_record(collector, record, pull_threads)
    return collector.parsed


def _records(document: JSON) -> list[dict[str, Any]]:
    if isinstance(document, dict) and {"issues", "comments"} & document.keys():
        return [as_dict(r) for r in as_list(document.get("issues")) + as_list(document.get("comments"))]
    if isinstance(document, dict) and "id" in document:
        return [document]  # a single issue or comment
    if isinstance(document, list):
        return [as_dict(record) for record in document]
    raise InvalidInput(f"neither an array nor an object with 'issues' or 'comments'; is this {LABEL}?")


def pull_request_threads(records: JSON) -> set[str]:
    """The threads of the pull requests among these records, to tell their comments apart."""
    pulls = [as_dict(record) for record in as_list(records) if "pull_request" in as_dict(record)]
    return {thread for pull in pulls if (thread := issue_thread(pull.get("url") or pull.get("html_url")))}


def issue_thread(url: object) -> str | None:
    """``owner/repo#number`` from an issue's API or web URL: the thread its comments share."""
    match = _ISSUE_URL.search(url) if isinstance(url, str) else None
    return f"{match[1]}#{match[2]}" if match else None


def _add_record(collector: Collector, record: dict[str, Any], pull_threads: set[str]) -> None:
    if "pull_request" in record:
        collector.parsed.skip(PULL_REQUEST)
    elif as_dict(record.get("user")).get("type") == "Bot":
        collector.parsed.skip(BOT)
    elif "number" in record:
        collector.add(_issue(record))
    elif "issue_url" in record:
        if issue_thread(record["issue_url"]) in pull_threads:
            collector.parsed.skip(PULL_REQUEST_COMMENT)
        else:
            collector.add(_comment(record))
    else:
        collector.parsed.skip(NOT_ISSUE)


def _issue(issue: dict[str, Any]) -> Draft:
    return Draft(
        source_id=f"issue:{issue['id']}" if issue.get("id") is not None else None,
        title=issue.get("title"),
        body=issue.get("body"),
        at=issue.get("created_at"),
        author=as_dict(issue.get("user")).get("login"),
        url=issue.get("html_url"),
        engagement=_reactions(issue) + as_int(issue.get("comments")),
        thread=issue_thread(issue.get("url") or issue.get("html_url")),
    )


def _comment(comment: dict[str, Any]) -> Draft:
    return Draft(
        # Issue and comment ids are separate sequences; the prefix keeps them from colliding.
        source_id=f"comment:{comment['id']}" if comment.get("id") is not None else None,
        body=comment.get("body"),
        at=comment.get("created_at"),
        author=as_dict(comment.get("user")).get("login"),
        url=comment.get("html_url"),
        engagement=_reactions(comment),
        thread=issue_thread(comment.get("issue_url") or comment.get("html_url")),
    )


def _reactions(record: dict[str, Any]) -> int:
    return as_int(as_dict(record.get("reactions")).get("total_count"))
