"""Test support (not tests): data paths, scripted models, small cases. Fixtures live in conftest.py."""
