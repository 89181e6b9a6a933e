"""Profiles and model settings: bad files, unknown providers and missing keys get clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodo.agents.choice import default_model, parse_model
from autodo.agents.models import build_model
from autodo.agents.profiles import load_profiles
from autodo.config import Settings
from autodo.errors import ConfigError, ModelUnavailable


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "profiles.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_default_profile(home: Path) -> None:
    assert list(load_profiles(home / "profiles.toml").profile) == ["default"]


def test_a_profile_file_is_read_with_its_budget_and_tools(home: Path) -> None:
    path = write(
        home, '[profile.writer]\nmodel = "openai:gpt-5-mini"\ntools = ["write_file"]\nbudget = { turns = 5 }\n'
    )
    writer = load_profiles(path).profile["writer"]
    assert (writer.name, writer.tools, writer.budget.turns) == ("writer", ["write_file"], 5)


def test_invalid_toml_names_the_file_and_line(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"profiles.toml is not valid TOML.*line 1"):
        load_profiles(write(home, "[profile.x\n"))


def test_an_unknown_tool_is_named_with_the_available_ones(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown tools \['rm_rf'\]; available: read_file"):
        load_profiles(write(home, '[profile.x]\ntools = ["rm_rf"]\n'))


def test_an_unknown_setting_is_refused(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"profile\.x\.temperature"):
        load_profiles(write(home, "[profile.x]\ntemperature = 3\n"))


def test_an_unknown_provider_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model provider 'gemini'.*openai.*anthropic"):
        parse_model("gemini:pro")


def test_a_model_without_provider_is_refused_with_an_example() -> None:
    with pytest.raises(ConfigError, match="provider:model"):
        parse_model("gpt-5")


def test_a_missing_key_names_the_variable_to_set() -> None:
    with pytest.raises(ModelUnavailable, match=r"\$OPENAI_API_KEY"):
        build_model(parse_model("openai:gpt-5-mini"), Settings())
    with pytest.raises(ModelUnavailable, match=r"\$ANTHROPIC_API_KEY"):
        build_model(parse_model("anthropic:claude-sonnet-4-5"), Settings())


def test_a_local_base_url_needs_no_key() -> None:
    model = build_model(parse_model("openai:llama3.2", base_url="http://127.0.0.1:11434/v1"), Settings())
    assert model.model_name == "llama3.2"


def test_the_default_model_follows_the_keys_present(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_model(Settings()) is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert default_model(Settings()) == "anthropic:claude-sonnet-4-5"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert default_model(Settings()) == "openai:gpt-5-mini"
    monkeypatch.setenv("AUTODO_MODEL", "openai:my-model")
    assert default_model(Settings()) == "openai:my-model"
