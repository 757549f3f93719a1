"""`python -m harness.bench`: the benchmark behind scripts/bench."""
