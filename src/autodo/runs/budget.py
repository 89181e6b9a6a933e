"""Budgets that ask instead of kill: turns, tokens, money and working time per run.

A profile sets the limits for each of its runs; a task may set its own, which win field by
field. At a limit the run waits for the person to raise the budget or stop it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autodo.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelResponse  # only the worker loads pydantic-ai

_ASSIGNMENT = re.compile(r"^\s*(\w+)\s*=\s*([0-9.]+)\s*$")


class Budget(BaseModel):
    """Limits of one run; None means no limit."""

    model_config = ConfigDict(extra="forbid")

    turns: int | None = Field(default=None, ge=1, le=100_000)  # model requests
    tokens: int | None = Field(default=None, ge=1)  # input + output
    usd: float | None = Field(default=None, gt=0)  # from provider usage and the price table
    minutes: float | None = Field(default=None, gt=0)  # working time; waiting on the person does not count


class Price(BaseModel):
    """What a model costs, in US dollars per million tokens (overrides the bundled price table)."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Spent(BaseModel):
    """What a run has used so far; ``usd`` is None when a price is unknown (never guessed as zero)."""

    turns: int = 0
    tokens: int = 0
    usd: float | None = 0.0
    minutes: float = 0.0


def parse_budget(text: str) -> dict[str, Any]:
    """``"turns=60 usd=2.5"`` (spaces or commas) into the fields it sets, validated."""
    fields: dict[str, Any] = {}
    for piece in re.split(r"[,\s]+(?=\w+\s*=)", text.strip()):
        match = _ASSIGNMENT.match(piece)
        if match is None:
            raise InvalidInput(
                f"cannot read {piece!r} as a limit; write e.g. turns=60 tokens=200000 usd=2.5 minutes=30"
            )
        fields[match.group(1)] = match.group(2)
    if not fields:
        raise InvalidInput("no limits given; write e.g. turns=60 usd=2.5")
    try:
        return Budget.model_validate(fields).model_dump(exclude_unset=True)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise InvalidInput(f"{problems} (limits: turns, tokens, usd, minutes)") from None


def effective(profile_budget: Budget, task_budget: dict[str, Any] | None) -> Budget:
    """The task's own limits where it sets them, the profile's elsewhere."""
    return Budget.model_validate({**profile_budget.model_dump(), **(task_budget or {})})


def exceeded(budget: Budget, spent: Spent) -> str | None:
    """Which limit the run has reached, in words, or None."""
    if budget.turns is not None and spent.turns >= budget.turns:
        return f"turns: {spent.turns} of {budget.turns} used"
    if budget.tokens is not None and spent.tokens >= budget.tokens:
        return f"tokens: {spent.tokens:,} of {budget.tokens:,} used"
    if budget.usd is not None:
        if spent.usd is None:
            return f"money: the model's price is unknown, so the ${budget.usd:.2f} limit cannot be checked"
        if spent.usd >= budget.usd:
            return f"money: ${spent.usd:.4f} of ${budget.usd:.2f} spent"
    if budget.minutes is not None and spent.minutes >= budget.minutes:
        return f"time: {spent.minutes:.1f} of {budget.minutes:g} minutes worked"
    return None


def turn_cost(price: Price | None, response: ModelResponse) -> float | None:
    """The cost of one model response: the profile's price, else the bundled table, else unknown."""
    usage = response.usage
    if price is not None:
        return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000
    try:
        return float(response.cost().total_price)
    except (LookupError, ValueError, AssertionError):
        return None
