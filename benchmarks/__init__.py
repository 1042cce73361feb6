"""pysf's benchmarks. Each one runs as a module from the repository root, e.g. ``python -m benchmarks.compare``."""
