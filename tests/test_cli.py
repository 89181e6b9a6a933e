"""The command line: every command, `--json` output, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from autodo.cli.app import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def add(*args: str) -> dict[str, object]:
    result = run("add", *args, "--json")
    assert result.exit_code == 0, result.output
    created: dict[str, object] = json.loads(result.output)
    return created


def test_add_without_a_model_says_how_to_configure_one() -> None:
    result = run("add", "Write a haiku")
    assert result.exit_code == 0
    assert "untriaged" in result.output and "OPENAI_API_KEY" in result.output


def test_add_with_dependencies_priority_and_labels_round_trips_through_json() -> None:
    first = add("first")
    second = add("second", "--after", str(first["id"]), "--priority", "high", "--label", "lane:agent")
    assert (second["blocked_by"], second["priority"], second["labels"], second["state"]) == (
        [first["id"]], "high", ["lane:agent"], "blocked",
    )  # fmt: skip
    listed = json.loads(run("ls", "--json").output)
    assert [task["id"] for task in listed] == [second["id"], first["id"]]


def test_show_json_includes_the_transcript() -> None:
    task = add("one")
    detail = json.loads(run("show", str(task["id"]), "--json").output)
    assert detail["task"]["title"] == "one"
    assert [event["kind"] for event in detail["events"]] == ["task.created"]


def test_errors_are_one_line_with_exit_code_one() -> None:
    result = CliRunner().invoke(cli, ["show", "NOPE"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: no task NOPE; `autodo ls` lists the tasks and their ids"


def test_a_dependency_cycle_is_named_on_the_command_line() -> None:
    a = add("a")
    b = add("b", "--after", str(a["id"]))
    result = CliRunner().invoke(cli, ["block", str(a["id"]), "--on", str(b["id"])])
    assert result.exit_code == 1
    assert f"{a['id']} → {b['id']} → {a['id']}" in result.output


def test_move_inbox_answer_and_done() -> None:
    task = add("sign it")
    assert run("move", str(task["id"]), "--lane", "human", "--reason", "your signature").exit_code == 0
    items = json.loads(run("inbox", "--json").output)
    assert [(item["kind"], item["prompt"]) for item in items] == [("handoff", "your signature")]
    assert run("done", str(task["id"]), "--note", "signed").exit_code == 0
    assert json.loads(run("show", str(task["id"]), "--json").output)["task"]["result"] == "signed"
    assert "Nothing is waiting on you" in run("inbox").output


def test_answer_resolves_an_ask_lane_question() -> None:
    task = add("pick colours", "--label", "lane:ask")
    [item] = json.loads(run("inbox", "--json").output)
    assert run("answer", item["id"], "teal").exit_code == 0
    assert json.loads(run("show", str(task["id"]), "--json").output)["task"]["state"] == "queued"
    again = CliRunner().invoke(cli, ["answer", item["id"], "red"])
    assert again.exit_code == 1 and "already answered" in again.output


def test_cancel_a_queued_task() -> None:
    task = add("x", "--label", "lane:agent")
    assert run("cancel", str(task["id"])).exit_code == 0
    assert json.loads(run("show", str(task["id"]), "--json").output)["task"]["state"] == "cancelled"


def test_summary_shows_columns_and_what_waits_on_you() -> None:
    add("sign it", "--label", "lane:human")
    output = run().output
    assert "Yours: 1" in output and "1 waiting on you" in output and "Triage is off" in output


def test_profiles_lists_the_default_profile() -> None:
    [profile] = json.loads(run("profiles", "--json").output)
    assert profile["name"] == "default" and "run_command" in profile["tools"]


def test_work_without_a_model_explains_how_to_configure_one() -> None:
    result = CliRunner().invoke(cli, ["work", "--until-settled"])
    assert result.exit_code == 1
    assert "no model is configured" in result.output and "autodo demo" in result.output


def test_a_malformed_profile_file_is_reported_with_the_file_and_the_problem(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.toml").write_text("[profile.coder]\nconcurrency = 'many'\n")
    result = CliRunner().invoke(cli, ["profiles"])
    assert result.exit_code == 1
    assert "profiles.toml" in result.output and "profile.coder.concurrency" in result.output


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [name for name in cli.list_commands(None) if f"autodo {name}" not in readme]  # type: ignore[arg-type]
    assert missing == []
