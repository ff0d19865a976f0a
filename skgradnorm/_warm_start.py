"""The heads' warm start and its safeguard (departures from TAC; no I/O).

- :func:`training_free_clusters`: the clusters the heads start from, those of
  :class:`~skgradnorm.LanguageAssistedClusterer` with its defaults (spherical k-means of the
  unit ``[u ; t]``).
- :func:`choose`: after TAC's training, the heads' clusters are kept only when they separate
  the images at least as well (mean cosine silhouette on ``u``, a label-free criterion) as
  the training-free clusters; otherwise the training-free clusters are. Chosen on the
  planted, calibrated and real benchmark families (``benchmarks/bench_evidence.py``;
  ``benchmarks/RESULTS.md``, "The heads' safeguard").
"""

from __future__ import annotations

import numpy as np

from ._cluster._kmeans import spherical_kmeans
from ._cluster._label_free import cosine_silhouette
from ._utils._validation import l2_normalize_rows

__all__ = ["INIT_KMEANS", "choose", "describe_choice", "joint_embedding", "training_free_clusters"]

#: The k-means of LanguageAssistedClusterer's defaults on [u ; t].
INIT_KMEANS = {"n_init": 20, "max_iter": 300, "tol": 1e-4}


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
        ``"heads"`` when their mean cosine silhouette on ``U`` is at least the
        training-free clusters'.
    silhouettes : dict
        ``{"heads": float, "training-free": float}``.
    """
    silhouettes = {
        "heads": cosine_silhouette(U, head_labels, random_state=random_state),
        "training-free": cosine_silhouette(U, init_labels, random_state=random_state),
    }
    chosen = "heads" if silhouettes["heads"] >= silhouettes["training-free"] else "training-free"
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
            f"The trained heads' clusters were kept: they separate the images at least as "
            f"well as the training-free ones (cosine silhouette {heads:.3f} against {free:.3f})."
        )
    return (
        f"The training-free clusters were kept: the trained heads' separate the images less "
        f"well (cosine silhouette {heads:.3f} against {free:.3f})."
    )
