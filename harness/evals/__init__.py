"""The Inspect adapter: task builders, scorers and the ``m2bench/default`` model provider.

Thin wrappers around the scoring core; the scoring itself lives in ``harness`` (grading,
rubric, answers, consultation).
"""
