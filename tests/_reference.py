"""The test oracle: plain, slow, obviously-correct versions the fast paths are checked against.

Used by the tests (exactness on random inputs) and by ``benchmarks/`` (the baseline that
speed is measured against). Written for clarity: a loop over centres, float64 numpy, the
formulas exactly as the GradNorm paper (arXiv:2510.16335) states them. Never used by the estimators.
"""

from __future__ import annotations

import numpy as np


def reference_gradnorm_scores(noun_embeddings, centers, *, temperature, p=2.0):
    """GradNorm scores with a loop over centres and the paper's formula, in float64.

    ``score(e) = ((sum_k s_k^p + (1 - c)^p - c^p) * sum_j |e_j|^p) ** (1/p)``.
    Memory: a few (n_centers, n_nouns) float64 matrices.
    """
    E = np.asarray(noun_embeddings, dtype=np.float64)
    W = np.asarray(centers, dtype=np.float64)
    C, M = W.shape[0], E.shape[0]
    logits = np.empty((C, M))
    for k in range(C):  # one centre at a time: logits of every noun for centre k
        logits[k] = E @ W[k] / temperature
    assignments = logits.argmax(axis=0)
    s = np.exp(logits - logits.max(axis=0))
    s /= s.sum(axis=0)
    c = s[assignments, np.arange(M)]
    if np.isinf(p):
        deviation = np.maximum(
            1.0 - c, np.where(np.arange(C)[:, None] == assignments, 0.0, s).max(axis=0)
        )
        return deviation * np.abs(E).max(axis=1), assignments
    sum_sp = np.zeros(M)
    for k in range(C):
        sum_sp += s[k] ** p
    scores = ((sum_sp + (1.0 - c) ** p - c**p) * (np.abs(E) ** p).sum(axis=1)) ** (1.0 / p)
    return scores, assignments


def reference_select_top_k_per_center(scores, assignments, top_k):
    """Per-centre loop: the ``top_k`` smallest finite scores of each centre, ties by index."""
    scores = np.asarray(scores)
    assignments = np.asarray(assignments)
    selected = []
    for k in np.unique(assignments):
        members = np.flatnonzero(assignments == k)
        members = members[np.isfinite(scores[members])]
        ranked = members[np.argsort(scores[members], kind="stable")]
        selected.extend(ranked[:top_k].tolist())
    return np.asarray(selected, dtype=np.int64)


def reference_text_counterparts(image_embeddings, noun_embeddings, *, temperature):
    """``normalize(softmax(U E^T / tau) E)`` image by image, in float64."""
    U = np.asarray(image_embeddings, dtype=np.float64)
    E = np.asarray(noun_embeddings, dtype=np.float64)
    out = np.empty((U.shape[0], E.shape[1]))
    for i, u in enumerate(U):
        z = E @ u / temperature
        w = np.exp(z - z.max())
        w /= w.sum()
        t = w @ E
        out[i] = t / np.linalg.norm(t)
    return out
