"""m2bench harness: data loaders, rubric grading, patient simulator, reports."""

__version__ = "0.1.0"
