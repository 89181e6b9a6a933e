"""Which model to use: ``provider:model`` parsing and defaults (no SDK imports: the CLI starts fast)."""

from __future__ import annotations

from dataclasses import dataclass

from autodo.config import Settings
from autodo.errors import ConfigError

PROVIDERS = ("openai", "anthropic")
DEFAULT_OPENAI_MODEL = "openai:gpt-5-mini"
DEFAULT_ANTHROPIC_MODEL = "anthropic:claude-sonnet-4-5"

HOW_TO_CONFIGURE = (
    "no model is configured. Set OPENAI_API_KEY or ANTHROPIC_API_KEY, or point OPENAI_BASE_URL at an "
    "OpenAI-compatible server (Ollama, vLLM, llama.cpp) and set AUTODO_MODEL=openai:MODEL; "
    "`autodo demo` shows everything with a scripted model"
)


@dataclass(frozen=True)
class ModelChoice:
    """A parsed model setting: which provider, which model, where."""

    provider: str
    name: str
    base_url: str | None = None
    api_key_env: str | None = None

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.name}"


def default_model(settings: Settings) -> str | None:
    """The model used when a profile names none, from AUTODO_MODEL or the keys present."""
    if settings.model:
        return settings.model
    if settings.openai_api_key or settings.openai_base_url:
        return DEFAULT_OPENAI_MODEL
    if settings.anthropic_api_key:
        return DEFAULT_ANTHROPIC_MODEL
    return None


def parse_model(spec: str, base_url: str | None = None, api_key_env: str | None = None) -> ModelChoice:
    provider, sep, name = spec.partition(":")
    if not sep or not name:
        raise ConfigError(f"model {spec!r} must be written provider:model, e.g. {DEFAULT_OPENAI_MODEL}")
    if provider not in PROVIDERS:
        raise ConfigError(
            f"unknown model provider {provider!r} in {spec!r}; use openai (also for any OpenAI-compatible "
            "server, with base_url) or anthropic"
        )
    return ModelChoice(provider, name, base_url, api_key_env)
