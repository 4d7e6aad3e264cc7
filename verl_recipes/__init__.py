"""Training recipes that run on verl and are rewarded by the harness scorers."""
