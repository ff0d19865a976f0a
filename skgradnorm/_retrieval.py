"""Retrieval of each image's text counterpart from the kept nouns, with no I/O.

``t = normalize(softmax(u E^T / tau) E)`` (TAC and GradNorm's step 4), in chunks of images so
that the (images x nouns) matrix is never held whole.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils._param_validation import validate_params

from ._gradnorm import COMPUTE_PARAMS, POSITIVE, divide_shifted
from ._utils._torch import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    numpy_dtype_for,
    resolve_device,
    torch_dtype_for,
)

__all__ = ["text_counterparts"]


@validate_params(
    {
        "image_embeddings": ["array-like"],
        "noun_embeddings": ["array-like"],
        "temperature": [POSITIVE],
        **COMPUTE_PARAMS,
    },
    prefer_skip_nested_validation=True,
)
def text_counterparts(
    image_embeddings, noun_embeddings, *, temperature, device=None, chunk_size=None
):
    """Retrieve each image's text counterpart from a set of (selected) nouns.

    ``t = normalize(softmax(u E^T / tau) E)``, as in TAC [1]_ and GradNorm [2]_, computed in
    chunks of images so that the (n_images, n_nouns) matrix is never materialised whole.

    Parameters
    ----------
    image_embeddings : ndarray of shape (n_images, n_features)
    noun_embeddings : ndarray of shape (n_nouns, n_features)
    temperature : float
        Retrieval temperature ``tau`` (> 0).

    Returns
    -------
    ndarray of shape (n_images, n_features)
        L2-normalised text counterparts, in the dtype of the computation.

    References
    ----------
    .. [1] Y. Li, P. Hu, D. Peng, J. Lv, J. Fan, X. Peng, "Image Clustering with External
       Guidance", ICML 2024, arXiv:2310.11989.
    .. [2] B. Peng, J. Lu, Y. Zhang, Z. Fang, "On the Provable Importance of Gradients for
       Language-Assisted Image Clustering", ICCV 2025, arXiv:2510.16335.
    """
    dev = resolve_device(device)
    dtype = torch_dtype_for(image_embeddings, noun_embeddings)
    n, m = image_embeddings.shape[0], noun_embeddings.shape[0]
    if chunk_size is None:
        chunk_size = default_chunk_size(m, dev)
    chunk_size = int(max(1, min(chunk_size, max(n, 1))))
    E = as_tensor(noun_embeddings, dev, dtype)
    Et_scaled = (E / temperature).T.contiguous()
    # For temperatures near the smallest floats E / tau overflows: divide after the max
    # is subtracted instead (0 at the max, -inf or finite elsewhere), see _gradnorm._logits_into.
    scale_after = not bool(torch.isfinite(Et_scaled).all())
    if scale_after:
        Et_scaled = E.T.contiguous()
    out = np.empty((n, E.shape[1]), dtype=numpy_dtype_for(dtype))
    # On the CPU, the results are written straight into `out`, through a tensor view of it.
    out_t = torch.from_numpy(out) if dev.type == "cpu" else None
    work = torch.empty((chunk_size, m), dtype=dtype, device=dev)
    with torch.inference_mode():
        for sl in iter_chunks(n, chunk_size):
            u = as_tensor(image_embeddings[sl], dev, dtype)
            s = work[: u.shape[0]]
            torch.mm(u, Et_scaled, out=s)
            # softmax(s) @ E = (exp(s - max) @ E) / sum(exp(s - max)): the division by the
            # row sum is a positive scale, which the final normalisation removes anyway.
            s.sub_(s.max(dim=1, keepdim=True).values)
            if scale_after:
                divide_shifted(s, temperature)
            # exp of values under -87 gives float32 subnormals (or 0), which made the exp
            # ~3x slower on clustered data (measured: 20% of the whole retrieval). Their
            # weights are < 1.7e-38 against 1 for the largest, so flooring the exponent
            # changes t by less than n_nouns * 1.7e-38 relative: nothing, in float32 or
            # float64 (benchmarks/bench_pipeline.py compares with the exact formula).
            s.clamp_min_(-87.0).exp_()
            t = s @ E
            t.div_(torch.linalg.vector_norm(t, dim=1, keepdim=True))
            if out_t is not None:
                out_t[sl] = t
            else:
                out[sl] = t.cpu().numpy()
    return out
