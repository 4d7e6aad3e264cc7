"""Small Inspect runs whose outcome a test chooses: how many samples, which of them fail."""

from __future__ import annotations

from collections.abc import Collection

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, solver


def task_with_failures(samples: int = 4, broken: Collection[int] = ()) -> Task:
    """``samples`` questions answered "yes" by a mock model; the samples in ``broken`` raise instead."""

    @solver
    def fail_some():
        async def solve(state, generate):
            if state.sample_id in broken:
                raise RuntimeError("the model endpoint went away")
            return state

        return solve

    dataset = MemoryDataset([Sample(id=i, input=f"q{i}", target="yes") for i in range(samples)], name="fixture")
    return Task(dataset=dataset, solver=[fail_some(), generate()], scorer=includes())
