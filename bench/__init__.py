"""Benchmarks (not tests): tuning and rendering speed and memory, each beside its baseline
measured in the same process. Run `python -m bench --quick` (CPU) or `--full` (a GPU)."""
