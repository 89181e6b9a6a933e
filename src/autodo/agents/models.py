"""From a model choice and the environment to a pydantic-ai model that talks HTTP."""

from __future__ import annotations

import os

from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from autodo.agents.choice import ModelChoice
from autodo.config import Settings
from autodo.errors import ModelUnavailable

# The SDKs retry 429, 5xx, and timeouts with exponential backoff, honouring Retry-After.
TRANSIENT_RETRIES = 4


def build_model(
    choice: ModelChoice, settings: Settings, timeout: float = 120.0, retries: int = TRANSIENT_RETRIES
) -> Model:
    """A pydantic-ai model for the choice; raises ModelUnavailable when its key is missing."""
    if choice.provider == "anthropic":
        key = _key(choice, settings.anthropic_api_key, "ANTHROPIC_API_KEY")
        base_url = choice.base_url or settings.anthropic_base_url
        client = AsyncAnthropic(api_key=key, base_url=base_url, max_retries=retries, timeout=timeout)
        return AnthropicModel(choice.name, provider=AnthropicProvider(anthropic_client=client))
    base_url = choice.base_url or settings.openai_base_url
    key = _key(choice, settings.openai_api_key, "OPENAI_API_KEY", optional=base_url is not None)
    openai_client = AsyncOpenAI(api_key=key, base_url=base_url, max_retries=retries, timeout=timeout)
    return OpenAIChatModel(choice.name, provider=OpenAIProvider(openai_client=openai_client))


def _key(choice: ModelChoice, configured: str | None, env_name: str, optional: bool = False) -> str:
    if choice.api_key_env:
        value = os.environ.get(choice.api_key_env)
        if not value:
            raise ModelUnavailable(f"{choice.label} reads its key from ${choice.api_key_env}, which is not set")
        return value
    if configured:
        return configured
    if optional:
        return "not-needed"  # local OpenAI-compatible servers accept any key
    raise ModelUnavailable(f"{choice.label} needs ${env_name}; export it, or use a base_url for a local server")
