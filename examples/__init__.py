"""Runnable examples (importable so that ``--space examples.custom_space.mlp_space:MLPSpace`` works)."""
