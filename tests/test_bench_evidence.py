"""Tests of benchmarks/bench_evidence.py's tables: the family spread and paired differences.

The harness itself is a benchmark (not run in CI); its summary rows decide the package's
defaults, so their arithmetic is checked here against a plain computation on made-up
records.
"""

import numpy as np
import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def be():
    yield from benchmark_module("bench_evidence")


def _records(acc):
    """``acc[variant]`` of shape (n_worlds, n_seeds) as harness records."""
    out = []
    for v, table in acc.items():
        for w, row in enumerate(table):
            for s, x in enumerate(row):
                out.append({"world": f"w{w}", "seed": s, "variant": v, "ACC": float(x)})
    return out


def test_family_spread_and_difference_match_a_plain_computation(be):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.9, size=(3, 5))
    other = rng.uniform(0.4, 0.9, size=(3, 5))
    records = _records({"gradnorm": base, "other": other})

    # The spread: std over seeds of the mean over worlds.
    assert be._family_spread(records, "other", "ACC") == pytest.approx(np.std(other.mean(axis=0)))
    # The paired difference: mean and std over seeds of the per-seed mean difference.
    diff = (other - base).mean(axis=0)
    expected = f"**{diff.mean():+.3f}** ± {diff.std():.3f}"
    assert be._family_difference(records, "other") == expected
    assert be._family_difference(records, "missing") == "-"


def test_family_spread_skips_a_seed_missing_a_world(be):
    acc = np.array([[0.5, 0.6, 0.7], [0.9, 0.8, np.nan]])
    records = _records({"v": acc})
    # Seed 2 ran on one world only: the spread is over seeds 0 and 1.
    assert be._family_spread(records, "v", "ACC") == pytest.approx(
        np.std([acc[:, 0].mean(), acc[:, 1].mean()])
    )
