"""Speed and memory measurements; run from the project root, e.g. ``python -m benchmarks.epoch``."""
