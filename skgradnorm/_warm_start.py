"""The heads' warm start and its safeguard (departures from TAC; no I/O).

- :func:`training_free_clusters`: the clusters the heads start from, those of
  :class:`~skgradnorm.LanguageAssistedClusterer` with its defaults (spherical k-means of the
  unit ``[u ; t]``).
- :func:`choose`: after TAC's training, the heads' clusters are kept unless the
  training-free clusters separate the images clearly better (mean cosine silhouette on
  ``u``, a label-free criterion, higher by more than :data:`FALLBACK_MARGIN` of the heads');
  then the training-free clusters are. Chosen on the planted, calibrated and real benchmark
  families (``benchmarks/bench_evidence.py``; ``benchmarks/RESULTS.md``, "The heads'
  safeguard", and for the margin "The heads at 20,000 and 50,000 images").
"""

from __future__ import annotations

import numpy as np

from ._cluster._kmeans import spherical_kmeans
from ._cluster._label_free import cosine_silhouette
from ._utils._validation import l2_normalize_rows

__all__ = [
    "FALLBACK_MARGIN",
    "INIT_KMEANS",
    "choose",
    "describe_choice",
    "joint_embedding",
    "training_free_clusters",
]

#: The k-means of LanguageAssistedClusterer's defaults on [u ; t].
INIT_KMEANS = {"n_init": 20, "max_iter": 300, "tol": 1e-4}
#: The safeguard keeps the training-free clusters only when their silhouette exceeds the
#: heads' by more than this share of the heads' (a smaller difference is a tie, and a tie
#: keeps the trained heads). Without a margin, calibrated worlds of 20,000 and 50,000
#: images fell back on 3 of 15 and 7 of 10 fits, although the heads were ahead on every one
#: (by 0.005 to 0.125 ACC), mostly on silhouettes within 1% of each other; the training
#: runs that went astray on the planted family (0.13 ACC lost) had silhouettes 4 to 10
#: times lower, and the smallest difference that preceded a loss there was 4.2%.
FALLBACK_MARGIN = 0.02


def joint_embedding(X, T) -> np.ndarray:
    """The unit ``[u ; t]`` of image embeddings ``X`` and their text counterparts ``T``."""
    return l2_normalize_rows(np.hstack([l2_normalize_rows(X, name="X"), T]), name="[u ; t]")


def training_free_clusters(X, T, n_clusters: int, seed: int, device):
    """Spherical k-means (``INIT_KMEANS``, ``seed``) of :func:`joint_embedding`: the
    ``(n_clusters, 2 d)`` centres and the labels (int64)."""
    centers, labels, _, _ = spherical_kmeans(
        joint_embedding(X, T), n_clusters, random_state=seed, device=device, **INIT_KMEANS
    )
    return np.asarray(centers), np.asarray(labels, dtype=np.int64)


def choose(U, head_labels, init_labels, *, random_state=0):
    """Which clusters to keep: ``"heads"`` unless the training-free ones separate better.

    Parameters
    ----------
    U : ndarray of shape (n_samples, n_features)
        The unit image embeddings.
    head_labels, init_labels : ndarray of shape (n_samples,)
        The trained image head's clusters and the training-free ones.
    random_state : int, default=0
        Seeds the silhouette's subsample (the same rows for both; see
        :func:`~skgradnorm._cluster._label_free.cosine_silhouette`).

    Returns
    -------
    chosen : {"heads", "training-free"}
        ``"training-free"`` when those clusters' mean cosine silhouette on ``U`` exceeds the
        heads' by more than :data:`FALLBACK_MARGIN` times the heads' (in absolute value);
        ``"heads"`` otherwise.
    silhouettes : dict
        ``{"heads": float, "training-free": float}``.
    """
    silhouettes = {
        "heads": cosine_silhouette(U, head_labels, random_state=random_state),
        "training-free": cosine_silhouette(U, init_labels, random_state=random_state),
    }
    heads, free = silhouettes["heads"], silhouettes["training-free"]
    chosen = "training-free" if free - heads > FALLBACK_MARGIN * abs(heads) else "heads"
    return chosen, silhouettes


def describe_choice(estimator) -> str | None:
    """One sentence on which clusters a fitted heads estimator kept and why (None: nothing
    was compared)."""
    silhouettes = getattr(estimator, "silhouettes_", None)
    if silhouettes is None:
        return None
    heads, free = silhouettes["heads"], silhouettes["training-free"]
    if estimator.chosen_ == "heads":
        return (
            f"The trained heads' clusters were kept: they separate the images about as well "
            f"as the training-free ones or better (cosine silhouette {heads:.3f} against "
            f"{free:.3f})."
        )
    return (
        f"The training-free clusters were kept: the trained heads' separate the images "
        f"clearly less well (cosine silhouette {heads:.3f} against {free:.3f})."
    )
