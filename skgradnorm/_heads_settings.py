"""``MutualDistillationClusterer``'s TAC settings by number of clusters, and its size checks."""

from __future__ import annotations

import warnings

__all__ = ["LARGE_K", "LARGE_K_FROM", "SMALL_K", "check_sizes", "resolved"]

# TAC's train_head.py: (epochs, batch size, temperature) below and from 100 clusters on.
SMALL_K = {"n_epochs": 20, "batch_size": 512, "temperature": 0.5}
LARGE_K = {"n_epochs": 100, "batch_size": 8192, "temperature": 5.0}
LARGE_K_FROM = 100


def resolved(estimator, name):
    """The value of ``estimator``'s parameter ``name``, its ``\"auto\"`` resolved (TAC's)."""
    value = getattr(estimator, name)
    if value != "auto":
        return value
    return (LARGE_K if estimator.n_clusters >= LARGE_K_FROM else SMALL_K)[name]


def check_sizes(estimator, n_samples):
    """Every size check, before any long computation; returns the batch size to use."""
    if estimator.n_clusters > n_samples:
        raise ValueError(
            f"n_clusters={estimator.n_clusters} is larger than n_samples={n_samples}; ask "
            f"for at most {n_samples} clusters."
        )
    k = estimator.n_neighbors
    if n_samples < k + 1:
        raise ValueError(
            f"n_neighbors={k} needs at least {k + 1} samples "
            f"(a sample is not its own neighbour); got n_samples={n_samples}. Pass "
            f"n_neighbors <= {max(n_samples - 1, 1)} or more samples."
        )
    betas = tuple(estimator.betas)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(
            f"betas must be two numbers in [0, 1) (Adam's decay rates); got {estimator.betas!r}."
        )
    batch_size = resolved(estimator, "batch_size")
    if batch_size > n_samples:
        if estimator.batch_size != "auto":
            warnings.warn(
                f"batch_size={batch_size} is larger than n_samples={n_samples}; using "
                f"batch_size={n_samples} (one batch per epoch) instead.",
                UserWarning,
                stacklevel=3,
            )
        batch_size = n_samples
    return batch_size
