"""Turn a provider or model failure into a sentence that says what to do."""

from __future__ import annotations

from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelTimeoutError,
    UnexpectedModelBehavior,
)


def describe_failure(error: AgentRunError) -> str:
    """What went wrong with the model, and how to fix it."""
    if isinstance(error, ModelAuthenticationError):
        return "the model provider rejected the API key (401/403); check the key in the environment and run again"
    if isinstance(error, ModelRateLimitError):
        return "the model provider kept answering 429 (rate limited) after retries; wait, or lower the concurrency"
    if isinstance(error, ModelTimeoutError):
        return "the model provider did not answer in time after retries; check the server or raise request_timeout"
    if isinstance(error, ModelHTTPError):
        return f"the model provider answered HTTP {error.status_code} after retries: {_short(error.body)}"
    if isinstance(error, UnexpectedModelBehavior):
        return f"the model's replies could not be used: {error.message}; try a more capable model"
    if isinstance(error, ModelAPIError):
        return f"the model provider could not be used: {error.message}"
    return f"the agent run failed: {error}"


def _short(body: object) -> str:
    text = str(body)
    return text if len(text) <= 300 else text[:300] + "…"
