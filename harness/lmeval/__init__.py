"""The lm-eval adapter: task helpers for ``tasks/lm_eval``, the offline model, results import."""
