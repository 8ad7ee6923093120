"""Benchmarks run by ``engagehub bench ...``: figures and ratios against same-run baselines."""
