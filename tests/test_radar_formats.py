"""The radar's parsers: every channel's bytes become items, and every bad item a counted reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from autodo.errors import InvalidInput
from autodo.radar.formats import (
    BAD_DATE,
    BAD_LINE,
    BAD_ZSTD,
    BOT,
    DELETED,
    DUPLICATE_ID,
    EMPTY_TEXT,
    FORMATS,
    MISSING_ID,
    TOO_LONG,
    ColumnMap,
    parse,
    parse_appstore,
    parse_github,
    parse_hn,
    parse_mbox,
    parse_play,
    parse_reddit,
    parse_table,
    parse_time,
    parse_x,
)
from autodo.radar.formats.appstore import NOT_REVIEW
from autodo.radar.formats.github import PULL_REQUEST, PULL_REQUEST_COMMENT
from autodo.radar.formats.reddit import MORE
from autodo.radar.formats.x_api import RETWEET
from autodo.radar.items import MAX_TEXT, Item, Parsed, hash_author

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass

FIXTURES = Path(__file__).parent / "radar_fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def by_id(parsed: Parsed) -> dict[str, Item]:
    return {item.source_id: item for item in parsed.items}


# Reddit


def test_reddit_listing_gives_posts_with_absolute_urls_and_engagement() -> None:
    parsed = parse_reddit(fixture("reddit_new_page1.json"))
    [post] = parsed.items
    assert post.source == "reddit"
    assert post.source_id == "t3_1aa01"
    assert post.url == "https://www.reddit.com/r/autodo/comments/1aa01/export_to_csv_crashes_the_app/"
    assert post.title == "Export to CSV crashes the app"
    assert post.body.startswith("Every time I export")
    assert post.at == utc(2024, 5, 1, 10)
    assert post.engagement == 42 + 7
    assert post.thread == "t3_1aa01"
    assert post.author == hash_author("reddit", "alice_dev")


def test_reddit_removed_post_is_skipped_with_a_reason() -> None:
    assert parse_reddit(fixture("reddit_new_page1.json")).skipped == {DELETED: 1}


def test_reddit_post_by_a_deleted_account_is_kept_without_an_author() -> None:
    post = parse_reddit(fixture("reddit_new_page2.json")).items[1]
    assert (post.source_id, post.author, post.title, post.engagement) == ("t3_1aa03", None, "Dark mode please", 1)


def test_reddit_comment_tree_walks_replies_and_counts_more_stubs_and_bots() -> None:
    parsed = parse_reddit(fixture("reddit_comments.json"))
    assert [item.source_id for item in parsed.items] == ["t3_1aa01", "t1_c1", "t1_c2"]
    assert parsed.skipped == {MORE: 5, DELETED: 1, BOT: 1}
    reply = parsed.items[2]
    assert reply.thread == "t3_1aa01"
    assert reply.url == "https://www.reddit.com/comments/1aa01/_/c2/"
    assert reply.at == utc(2024, 5, 1, 12)


def test_author_hash_is_stable_ignores_case_and_differs_between_channels() -> None:
    parsed = parse_reddit(fixture("reddit_comments.json"))
    post, _, reply = parsed.items
    assert post.author == reply.author  # "alice_dev" and "Alice_Dev"
    assert post.author is not None and len(post.author) == 16 and "alice" not in post.author
    assert hash_author("reddit", "alice_dev") != hash_author("hn", "alice_dev")


def test_reddit_dump_lines_skip_duplicates_bad_dates_and_cut_lines() -> None:
    parsed = parse_reddit(fixture("reddit_dump.ndjson"))
    post, comment = parsed.items
    assert (post.source_id, post.at, post.engagement) == ("t3_d1", utc(2024, 5, 1, 10), 12)
    assert (comment.source_id, comment.thread) == ("t1_d2", "t3_d1")
    assert comment.url == "https://www.reddit.com/comments/d1/_/d2/"
    assert parsed.skipped == {DUPLICATE_ID: 1, BAD_DATE: 1, BAD_LINE: 1}


def test_reddit_zstd_dump_reads_like_the_plain_one() -> None:
    plain = fixture("reddit_dump.ndjson")
    compressed = zstandard.ZstdCompressor(level=3).compress(plain)
    assert compressed[:4] == b"\x28\xb5\x2f\xfd"
    assert parse_reddit(compressed) == parse_reddit(plain)


def test_reddit_truncated_zstd_dump_keeps_the_lines_before_the_damage() -> None:
    lines = [json.dumps({"id": f"p{n}", "title": f"post {n} " + "lorem " * 40, "created_utc": n}) for n in range(3000)]
    compressed = zstandard.ZstdCompressor(level=1).compress("\n".join(lines).encode())
    parsed = parse_reddit(compressed[: len(compressed) * 2 // 3])
    assert parsed.skipped[BAD_ZSTD] == 1
    assert 0 < len(parsed.items) < 3000
    assert parsed.items[0].source_id == "t3_p0"


def test_a_ten_megabyte_post_is_skipped_and_the_rest_kept() -> None:
    huge = {"id": "big", "title": "huge", "selftext": "x" * 10_000_000, "created_utc": 1714557600}
    small = {"id": "small", "title": "fine", "selftext": "short", "created_utc": 1714557600}
    parsed = parse_reddit(f"{json.dumps(huge)}\n{json.dumps(small)}\n".encode())
    assert [item.source_id for item in parsed.items] == ["t3_small"]
    assert parsed.skipped == {TOO_LONG: 1}
    assert str(MAX_TEXT) in TOO_LONG


def test_truncated_json_is_refused_with_a_hint_at_the_format() -> None:
    with pytest.raises(InvalidInput, match=r"not JSON: .*line 1.*; is this a Reddit listing"):
        parse("reddit", fixture("reddit_truncated.json"))


def test_an_html_page_is_refused_as_not_json() -> None:
    with pytest.raises(InvalidInput, match="HTML, not JSON"):
        parse("hn", fixture("error_page.html"))


# X


def test_x_search_gives_full_text_usernames_and_metrics() -> None:
    parsed = parse_x(fixture("x_search_page1.json"))
    first, reply = parsed.items
    assert first.source_id == "1785000000000000001"
    assert first.body.endswith("Is anyone else seeing this?")  # note_tweet, not the truncated text
    assert first.url == "https://x.com/ada_l/status/1785000000000000001"
    assert first.at == utc(2024, 5, 1, 10)
    assert first.engagement == 10 + 2 + 3 + 1
    assert first.author == hash_author("x", "901")
    assert reply.thread == first.thread == "1785000000000000001"
    assert reply.url == "https://x.com/i/web/status/1785000000000000003"  # author not in includes


def test_x_retweets_are_skipped_because_the_original_counts() -> None:
    assert parse_x(fixture("x_search_page1.json")).skipped == {RETWEET: 1}


def test_x_search_without_results_has_no_items() -> None:
    assert parse_x(b'{"meta": {"result_count": 0}}') == Parsed()


# Hacker News


def test_hn_story_and_comment_become_text_with_item_urls() -> None:
    story, comment = parse_hn(fixture("hn_search_page0.json")).items
    assert story.title == "Ask HN: Is autodo's sync reliable?"
    assert story.body == "I lost tasks & tags twice this week.\nAnyone else? I'm on 2.4."
    assert (story.engagement, story.thread) == (57, "40000001")
    assert story.url == "https://news.ycombinator.com/item?id=40000001"
    assert comment.body == "Yes, it's the sync bug.\nExport first > then sync."
    assert (comment.title, comment.engagement, comment.thread) == ("", 0, "40000001")
    assert comment.at == utc(2024, 5, 1, 10, 20)


def test_hn_deleted_comment_is_skipped_as_empty() -> None:
    assert parse_hn(fixture("hn_search_page0.json")).skipped == {EMPTY_TEXT: 1}


# App Store


def test_appstore_feed_skips_the_app_entry_and_reads_reviews() -> None:
    parsed = parse_appstore(fixture("appstore_page1.json"))
    review = by_id(parsed)["11000000001"]
    assert review == parsed.items[0]
    assert (review.title, review.rating, review.engagement) == ("Widgets stopped updating", 2.0, 4)
    assert review.at == utc(2024, 5, 1, 10, 4, 5)  # 03:04:05 at -07:00
    assert review.author == hash_author("appstore", "KimTasks")
    assert review.url == "https://itunes.apple.com/us/review?id=1234567890&type=Purple%20Software"
    assert parsed.skipped == {NOT_REVIEW: 1, BAD_DATE: 1}


def test_appstore_single_entry_comes_as_an_object() -> None:
    [review] = parse_appstore(fixture("appstore_single.json")).items
    assert (review.source_id, review.rating, review.body) == ("11000000009", 3.0, "Syncing a big list takes a minute.")


def test_appstore_feed_without_entries_has_no_items() -> None:
    assert parse_appstore(fixture("appstore_empty.json")) == Parsed()


# Google Play


def test_play_console_export_in_utf16_with_bom() -> None:
    data = fixture("play_reviews.csv")
    assert data[:2] == b"\xff\xfe"
    parsed = parse_play(data)
    first, second = parsed.items
    assert (first.source_id, first.title, first.rating) == ("gp:AOqpTOH-one", "Widget figé", 2.0)
    assert first.body.endswith("Depuis la 2.4 🙁") and '"rafraîchir"' in first.body
    assert first.at == utc(2024, 5, 1, 10)
    assert first.author is None
    assert second.source_id.startswith("play-")  # no link: an id made from the row, stable across months
    assert parse_play(data).items[1].source_id == second.source_id
    assert parsed.skipped == {EMPTY_TEXT: 1}  # a star rating without words


def test_play_scraper_columns_in_utf8_carry_thumbs_up_and_user() -> None:
    data = b"reviewId,userName,content,score,thumbsUpCount,at\nr1,Zoe,Crashes on login,1,12,2024-05-01 10:00:00\n"
    [review] = parse_play(data).items
    assert (review.source_id, review.rating, review.engagement) == ("r1", 1.0, 12)
    assert review.author == hash_author("play", "Zoe")


def test_play_file_in_a_wrong_encoding_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        parse_play("Review Text\nété\n".encode("latin-1"))


# GitHub


def test_github_issues_skip_pull_requests() -> None:
    parsed = parse_github(fixture("github_issues_page1.json"))
    issue, ghost = parsed.items
    assert (issue.source_id, issue.thread, issue.engagement) == ("issue:2001", "acme/autodo#12", 5 + 3)
    assert issue.url == "https://github.com/acme/autodo/issues/12"
    assert issue.at == utc(2024, 5, 1, 10)
    assert issue.author == hash_author("github", "alice-dev")
    assert (ghost.title, ghost.body, ghost.author) == ("Crash on start after update", "", None)
    assert parsed.skipped == {PULL_REQUEST: 1}


def test_github_comments_on_pull_requests_and_by_bots_are_skipped() -> None:
    issues, comments = json.loads(fixture("github_issues_page1.json")), json.loads(fixture("github_comments.json"))
    parsed = parse_github(json.dumps({"issues": issues, "comments": comments}).encode())
    comment = by_id(parsed)["comment:3001"]
    assert comment == parsed.items[-1]
    assert (comment.thread, comment.engagement) == ("acme/autodo#12", 1)
    assert parsed.skipped == {PULL_REQUEST: 1, PULL_REQUEST_COMMENT: 1, BOT: 1}


# Mail


def test_mbox_decodes_quoted_printable_encoded_subjects_and_escaped_from_lines() -> None:
    first = parse_mbox(fixture("support.mbox")).items[0]
    assert (first.source_id, first.thread) == ("m1@mail.example.com", "m1@mail.example.com")
    assert first.title == "Export crée un fichier vide"
    assert first.body == (
        "Bonjour, l'export CSV crée un fichier vide quand la liste dépasse 500 tâches.\n"
        "From the settings page it fails the same way."
    )  # the signature is gone
    assert first.at == utc(2024, 5, 1, 10)
    assert first.author == hash_author("mbox", "ana@example.com")


def test_mbox_base64_latin1_part_is_decoded_and_threaded_by_references() -> None:
    reply = parse_mbox(fixture("support.mbox")).items[1]
    assert reply.body.startswith("Très bien, merci. Ça marche encore mal après la mise à jour 2.4")
    assert reply.thread == "m1@mail.example.com"
    assert reply.title == "Re: Export crée un fichier vide"


def test_mbox_reply_loses_its_quote_and_threads_by_in_reply_to() -> None:
    last = parse_mbox(fixture("support.mbox")).items[2]
    assert (last.body, last.thread) == ("Still broken for me on 2.4.1.", "m2@mail.example.com")


def test_mbox_message_without_message_id_is_skipped() -> None:
    assert parse_mbox(fixture("support.mbox")).skipped == {MISSING_ID: 1}


def test_single_eml_with_only_html_is_read_as_text() -> None:
    [mail] = parse_mbox(fixture("single.eml")).items
    assert mail.body == "Every reminder arrives twice & sometimes three times.\n\nThanks,\nChris"
    assert mail.at == utc(2024, 5, 4, 22, 30)


def test_a_file_that_is_not_mail_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no mail headers"):
        parse_mbox(b"just some words\nand more words\n")


# Generic CSV / JSON Lines

SUPPORT_CSV = ColumnMap(
    id="Ticket ID",
    text="Description",
    title="Subject",
    author="Requester",
    time="Created At",
    rating="CSAT",
    url="Link",
)


def test_csv_import_reads_mapped_columns() -> None:
    parsed = parse_table(fixture("support_export.csv"), "csv", SUPPORT_CSV)
    first, second = parsed.items
    assert (first.source, first.source_id, first.title, first.rating) == ("csv", "T-100", "Cannot log in", 1.0)
    assert first.body == 'The login page says "session expired" right after I sign in, every time.'
    assert first.url == "https://support.example.com/t/100"
    assert second.at == utc(2024, 5, 1, 11, 30)  # no zone in the export: taken as UTC


def test_csv_rows_without_id_text_or_date_and_duplicates_are_counted() -> None:
    parsed = parse("csv", fixture("support_export.csv"), SUPPORT_CSV)
    assert parsed.skipped == {EMPTY_TEXT: 1, MISSING_ID: 1, BAD_DATE: 1, DUPLICATE_ID: 1}


def test_csv_column_missing_from_the_header_is_a_clear_error() -> None:
    columns = ColumnMap(id="Ticket ID", text="Body")
    with pytest.raises(InvalidInput, match=r"column 'Body' not in the CSV header \(columns: 'Ticket ID', 'Subject'"):
        parse("csv", fixture("support_export.csv"), columns)


def test_jsonl_import_follows_dotted_keys_and_counts_bad_lines() -> None:
    columns = ColumnMap(
        text="description", title="subject", author="requester.email", time="created_at", rating="satisfaction.score"
    )
    parsed = parse("jsonl", fixture("support_export.jsonl"), columns)
    first, second = parsed.items
    assert (first.source_id, first.rating, first.author) == ("501", 2.0, hash_author("jsonl", "kai@example.com"))
    assert second.at == utc(2024, 5, 1, 9)
    assert parsed.skipped == {BAD_LINE: 3}


def test_jsonl_key_that_is_in_no_line_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="key 'body' is in no line"):
        parse("jsonl", fixture("support_export.jsonl"), ColumnMap(text="body"))


def test_a_ten_megabyte_csv_cell_is_skipped_not_an_error() -> None:
    data = f"id,text\n1,{'y' * 10_000_000}\n2,short\n".encode()
    parsed = parse("csv", data)
    assert [item.source_id for item in parsed.items] == ["2"]
    assert parsed.skipped == {TOO_LONG: 1}


# The registry


def test_registry_names_every_format() -> None:
    assert set(FORMATS) == {"csv", "jsonl", "reddit", "x", "hn", "appstore", "play", "github", "mbox"}


def test_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="unknown format 'slack': use one of csv, jsonl, reddit"):
        parse("slack", b"{}")


def test_a_column_map_only_applies_to_tables() -> None:
    with pytest.raises(InvalidInput, match="only applies to csv and jsonl"):
        parse("reddit", fixture("reddit_new_page1.json"), ColumnMap())


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_an_empty_file_is_refused(fmt: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        parse(fmt, b" \n")


GARBAGE = [b"{}", b"[]", b"null", b'"text"', b"42", b"[1, {}]", b"\xff\xfe\x00garbage", b"{{{", b"a,b\n1,2\n"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_gives_invalid_input_or_items_never_a_crash(fmt: str, data: bytes) -> None:
    try:
        parsed = parse(fmt, data)
    except InvalidInput as error:
        assert error.message
    else:
        assert all(item.text for item in parsed.items)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1714557600, utc(2024, 5, 1, 10)),
        ("1714557600000", utc(2024, 5, 1, 10)),
        ("2024-05-01T12:00:00+02:00", utc(2024, 5, 1, 10)),
        ("2024-05-01T10:00:00.000Z", utc(2024, 5, 1, 10)),
        ("Wed, 01 May 2024 06:00:00 -0400", utc(2024, 5, 1, 10)),
        ("2024-05-01 10:00", utc(2024, 5, 1, 10)),
        (None, None),
    ],
)
def test_times_become_utc(raw: object, expected: datetime | None) -> None:
    assert parse_time(raw) == expected
