"""Benchmarks: scripts that write JSON and a Markdown table under bench/results/."""
