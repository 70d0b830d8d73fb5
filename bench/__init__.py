"""Benchmarks of the price crawler beside their baselines (`make bench`, `bench/run.py`)."""
