"""Baichuan-M2 style GRPO on verl, rewarded by the harness scorers (see README.md)."""
