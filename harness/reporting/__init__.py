"""Leaderboards and Pareto reports. Reads only tables: the leaderboard CSVs and the results table."""
