"""Command-line tools: benchmarks, the simulated OpenAI-compatible server, probes, demo, report CLI."""
