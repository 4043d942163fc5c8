"""Helpers the test packages share: tiny deterministic checkpoints and a server harness."""
