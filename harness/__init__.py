"""What the tests and the benchmarks both stand on: the tiny pipeline in a temporary git
repository (e2e), synthetic IDX data, a network namespace of its own for Ray, and an offline
headless browser. Neither imports the other's modules."""
