"""The stacks a benchmark puts side by side; each one works the same workload against the same stub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autodo.agents.profiles import DEFAULT_INSTRUCTIONS
from bench.common import Workload

# The peers get autodo's own instructions, so every stack sends requests of about the same size.
INSTRUCTIONS = DEFAULT_INSTRUCTIONS


@dataclass(frozen=True)
class StackRun:
    """One measurement: the makespan and the CPU seconds the work took, plus where its time went (ms)."""

    makespan: float
    cpu: float
    details: dict[str, float] = field(default_factory=dict)


# (workload, stub URL, scratch directory) → the measurement; raises BenchError when the work was wrong.
Measure = Callable[[Workload, str, Path], StackRun]


def task_prompt(workload: Workload, n: int) -> str:
    """The prompt the peers send; autodo builds its own from the task."""
    return f"# Task {n}: {workload.title(n)}\n\nWork in your workspace; the current directory is its root."
