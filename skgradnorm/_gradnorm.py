"""The noun-scoring math of GradNorm and of its baselines (TAC, SIC), with no I/O.

The retrieval of text counterparts from the kept nouns is in ``_retrieval.py``.

Every function here takes arrays and returns arrays; the estimators in ``_selector.py``
validate inputs and call these. All of them share one chunked pass over the nouns
(:func:`_center_softmax_stats`) that never materialises the full (nouns x centres) matrix.

Notation (GradNorm, arXiv:2510.16335): ``E`` (M, d) noun embeddings, ``W`` (C, d) image
centres, ``T`` the filter temperature, ``z = W e / T`` the logits of one noun,
``s = softmax(z)``, ``k* = argmax s`` and ``c = s[k*]`` its confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, Options, validate_params

from ._utils._torch import (
    as_tensor,
    default_chunk_size,
    iter_chunks,
    resolve_device,
    torch_dtype_for,
)
from ._utils._validation import (
    check_embedding_matrix,
    check_same_dimension,
    safe_row_norms,
)


@dataclass
class _SoftmaxStats:
    """Per-noun summaries of ``softmax(W e / T)``, enough for every filter in this module.

    With ``y_k = exp(z_k - z_max)`` (so ``y_{k*} = 1``):

    - ``rest = sum_{k != k*} y_k``: then ``c = 1 / (1 + rest)`` and ``1 - c = rest / (1 + rest)``,
      computed without the cancellation of ``1 - c`` when ``c`` is close to 1;
    - ``rest_p = sum_{k != k*} y_k ** p`` (only when a norm order ``p`` is asked for).
    """

    assignments: np.ndarray  # (M,) int64, argmax centre
    max_logit: np.ndarray  # (M,) z_max = max_k w_k . e / T
    rest: np.ndarray  # (M,)
    rest_p: np.ndarray | None  # (M,) or None
    # log(rest) and log(rest_p), exact even where rest underflows (only when asked for)
    log_rest: np.ndarray | None = None
    log_rest_p: np.ndarray | None = None


def divide_shifted(z, temperature):
    """Divide logits already shifted by their row maximum (so ``<= 0``) by ``T``, in place.

    A temperature that rounds to 0 in ``z``'s dtype (``1e-310`` in float32) gives the limit
    ``T -> 0``: 0 where the row reaches its maximum, ``-inf`` elsewhere.
    """
    t = torch.tensor(temperature, dtype=z.dtype)
    if t == 0:
        z.copy_(torch.where(z < 0, -torch.inf, 0.0))
    else:
        z.div_(t)


def _logits_into(z, e, Wt, temperature, scale_after):
    """``z = e W^T / T`` minus its row maximum; returns ``(z_max, k*)``.

    ``scale_after``: ``Wt`` holds the unscaled centres and the division by ``T`` happens
    after the maximum is subtracted. ``W / T`` would overflow for ``T`` near the smallest
    floats; ``(z - z_max) / T`` is 0 at ``k*`` and at most 0 elsewhere, so it never does.
    """
    torch.mm(e, Wt, out=z)
    zmax, k = z.max(dim=1)  # first maximal index on ties, like numpy.argmax
    z.sub_(zmax[:, None])
    if scale_after:
        divide_shifted(z, temperature)
        zmax = zmax / temperature
    return zmax, k


def _center_softmax_stats(E, W, *, temperature, p=None, device=None, chunk_size=None, log=False):
    """One chunked pass over the nouns computing :class:`_SoftmaxStats`.

    ``E`` and ``W`` are validated 2-D arrays (numpy or torch). The computation runs in torch
    on ``device`` (None: the device of a torch input, else the best available), in float64
    when either input is float64 and float32 otherwise. Work memory is one
    (chunk_size, C) matrix, reused for every chunk. With ``log``, ``log_rest`` (and
    ``log_rest_p``) are filled too: ``log(rest)`` where ``rest`` is a normal number, and a
    log-sum-exp recomputation for the few nouns whose ``rest`` underflowed (tiny ``T``).
    """
    if device is None and isinstance(E, torch.Tensor):
        device = E.device
    dev = resolve_device(device)
    dtype = torch_dtype_for(E, W)
    M, C = E.shape[0], W.shape[0]
    if chunk_size is None:
        chunk_size = default_chunk_size(C, dev)
    chunk_size = int(max(1, min(chunk_size, M)))

    # Fold 1/T into the centres once, z = e @ (W / T).T, unless W / T overflows.
    W_t = as_tensor(W, dev, dtype)
    Wt = (W_t / temperature).T.contiguous()
    scale_after = not bool(torch.isfinite(Wt).all())
    if scale_after:
        Wt = W_t.T.contiguous()
    assignments = torch.empty(M, dtype=torch.int64, device=dev)
    max_logit = torch.empty(M, dtype=dtype, device=dev)
    rest = torch.empty(M, dtype=dtype, device=dev)
    need_rest_p = p is not None and not np.isinf(p)  # p = inf needs only `rest`
    rest_p = torch.empty(M, dtype=dtype, device=dev) if need_rest_p else None
    work = torch.empty((chunk_size, C), dtype=dtype, device=dev)

    with torch.inference_mode():
        for sl in iter_chunks(M, chunk_size):
            e = as_tensor(E[sl], dev, dtype)
            z = work[: e.shape[0]]
            zmax, k = _logits_into(z, e, Wt, temperature, scale_after)
            z.exp_()  # y_k = exp(z_k - z_max), y_{k*} = 1
            z.scatter_(1, k[:, None], 0.0)  # drop k* so that sums run over k != k*
            assignments[sl] = k
            max_logit[sl] = zmax
            rest[sl] = z.sum(dim=1)
            if need_rest_p:
                if p == 1.0:
                    rest_p[sl] = rest[sl]
                else:
                    # (sum y^p)^(1/p) by a fused reduction, raised back to p
                    rest_p[sl] = torch.linalg.vector_norm(z, ord=p, dim=1).pow_(p)

    def _np(t):
        return None if t is None else t.cpu().numpy()

    stats = _SoftmaxStats(_np(assignments), _np(max_logit), _np(rest), _np(rest_p))
    if log:
        _fill_logs(stats, E, Wt, temperature, scale_after, p, dev, dtype, chunk_size)
    return stats


def _fill_logs(stats, E, Wt, temperature, scale_after, p, dev, dtype, chunk_size):
    """``log_rest`` and ``log_rest_p``, recomputed by log-sum-exp where ``rest`` underflowed.

    ``rest`` is a sum of ``exp(z_k - z_max)`` (``rest_p`` of their ``p``-th powers); below
    about ``2^24`` times the smallest normal float it has lost its precision (or is 0),
    which happens for very small temperatures. Those nouns are recomputed as
    ``logsumexp_{k != k*}(z_k - z_max)``,
    which is exact at any temperature; the others keep ``log(rest)``.
    """
    with np.errstate(divide="ignore"):
        stats.log_rest = np.log(stats.rest)
        if stats.rest_p is not None:
            stats.log_rest_p = np.log(stats.rest_p)
    tiny = np.finfo(stats.rest.dtype).tiny * 2.0**24
    lost = stats.rest < tiny
    if stats.rest_p is not None:
        lost |= stats.rest_p < tiny  # sum y^p underflows first, for p > 1
    low = np.flatnonzero(lost)
    if low.size == 0:
        return
    need_p = stats.rest_p is not None
    with torch.inference_mode():
        for sl in iter_chunks(low.size, chunk_size):
            rows = low[sl]
            block = E[rows] if isinstance(E, np.ndarray) else E[torch.as_tensor(rows)]
            e = as_tensor(block, dev, dtype)
            z = torch.empty((e.shape[0], Wt.shape[1]), dtype=dtype, device=dev)
            _, k = _logits_into(z, e, Wt, temperature, scale_after)
            z.scatter_(1, k[:, None], -torch.inf)  # drop k*
            stats.log_rest[rows] = torch.logsumexp(z, dim=1).cpu().numpy()
            if need_p:
                stats.log_rest_p[rows] = torch.logsumexp(z * p, dim=1).cpu().numpy()


def _log_gradnorm_from_stats(stats: _SoftmaxStats, log_norms_p: np.ndarray, p: float):
    """``log(||s - onehot(k*)||_p * ||e||_p)``, finite even where the score underflows."""
    lr = stats.log_rest.astype(np.float64)
    # rest = 0 exactly (T so small that only k* counts) gives log scores of -inf: the
    # limit of a fully confident noun, still a valid key for ranking.
    with np.errstate(over="ignore", invalid="ignore"):
        log1p_rest = np.logaddexp(0.0, lr)  # log(1 + rest)
        if np.isinf(p):
            log_dev = lr - log1p_rest
        else:
            log_dev = np.logaddexp(stats.log_rest_p.astype(np.float64), p * lr) / p - log1p_rest
    return log_dev + log_norms_p


def _gradnorm_from_stats(stats: _SoftmaxStats, noun_norms_p: np.ndarray, p: float) -> np.ndarray:
    """``||s - onehot(k*)||_p * ||e||_p`` from the per-noun softmax summaries."""
    rest = stats.rest
    if np.isinf(p):
        # ||s - onehot||_inf = max(1 - c, max_{k != k*} s_k) = 1 - c, as 1 - c = sum_{k != k*} s_k
        deviation_norm = rest / (1.0 + rest)
    else:
        # ||s - onehot||_p^p = sum_{k != k*} s_k^p + (1 - c)^p = (rest_p + rest^p) / (1 + rest)^p
        deviation_norm = np.power(stats.rest_p + np.power(rest, p), 1.0 / p) / (1.0 + rest)
    return deviation_norm * noun_norms_p


def _validate_bank_and_centers(noun_embeddings, centers):
    if isinstance(noun_embeddings, torch.Tensor) or isinstance(centers, torch.Tensor):
        E, W = noun_embeddings, centers
        for a, name in ((E, "noun_embeddings"), (W, "centers")):
            if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
                raise ValueError(
                    f"{name} must be a non-empty 2-D array; got shape {tuple(a.shape)}."
                )
            if not torch.isfinite(torch.as_tensor(a)).all():
                raise ValueError(f"{name} contains NaN or infinity.")
    else:
        E = check_embedding_matrix(noun_embeddings, name="noun_embeddings")
        W = check_embedding_matrix(centers, name="centers")
    check_same_dimension(E, W, a_name="noun_embeddings", b_name="centers")
    return E, W


def _row_p_norms(E, p: float) -> np.ndarray:
    if isinstance(E, torch.Tensor):
        return torch.linalg.vector_norm(E, ord=p, dim=1).cpu().numpy()
    if p == 2.0:
        # one einsum, no squared copy of the bank (np.linalg.norm makes one: 7 ms of a
        # 19 ms scoring of the 26,685-noun common bank)
        return safe_row_norms(E)
    return np.linalg.norm(E, ord=p, axis=1)


_ARRAYS = {"noun_embeddings": ["array-like"], "centers": ["array-like"]}
COMPUTE_PARAMS = {
    "device": [None, str, torch.device],
    "chunk_size": [None, Interval(Integral, 1, None, closed="left")],
}
POSITIVE = Interval(Real, 0, None, closed="neither")


@validate_params(
    {
        **_ARRAYS,
        "temperature": [POSITIVE],
        "p": [Interval(Real, 1, None, closed="left"), Options(Real, {np.inf})],
        **COMPUTE_PARAMS,
        "return_log": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def gradnorm_scores(
    noun_embeddings,
    centers,
    *,
    temperature,
    p=2.0,
    device=None,
    chunk_size=None,
    return_log=False,
):
    """GradNorm score of every noun and the centre it is assigned to.

    For a noun embedding ``e`` with logits ``z = W e / T`` over the image centres ``W``,
    softmax ``s``, predicted centre ``k* = argmax s`` and confidence ``c = s[k*]``, the
    score is ``T * ||dCE(onehot(k*), softmax(W e / T)) / dW||_p``, which equals

    ``((sum_k s_k^p + (1 - c)^p - c^p) * sum_j |e_j|^p) ** (1/p)``

    (GradNorm [1]_, section 3). A **small** score means a confident, "positive" noun. The
    inputs are used as given (the estimators L2-normalise them first).

    Parameters
    ----------
    noun_embeddings : array-like of shape (n_nouns, n_features)
        Noun embeddings ``E``. A numpy array or a torch tensor (kept on its device).
    centers : array-like of shape (n_centers, n_features)
        Image centres ``W``.
    temperature : float
        The filter temperature ``T`` (> 0). Smaller values sharpen the softmax.
    p : float, default=2.0
        Order of the element-wise gradient norm, ``p >= 1`` or ``numpy.inf``.
        With ``p = 1`` the score is ``2 (1 - c) ||e||_1`` (TAC's confidence ranking).
    device : str or torch.device, default=None
        Where to compute; None uses the device of a torch input, else the best available
        (CUDA, then MPS, then CPU).
    chunk_size : int, default=None
        Nouns per chunk; None picks one that keeps the work matrix small.
    return_log : bool, default=False
        Also return the natural logarithm of the scores, computed stably: finite where
        the score itself underflows to 0 (very small temperatures), so that such nouns can
        still be ranked (the selector breaks ties between equal scores with it).

    Returns
    -------
    scores : ndarray of shape (n_nouns,)
        The GradNorm score of each noun (float64 if an input is float64, else float32).
    assignments : ndarray of shape (n_nouns,), dtype int64
        Index of each noun's argmax centre ``k*`` (the first one on ties).
    log_scores : ndarray of shape (n_nouns,), float64
        ``log(scores)``, exact even where ``scores`` underflows; only with ``return_log``.

    Notes
    -----
    The score is computed as ``(sum_{k != k*} y_k^p + r^p)^(1/p) / (1 + r) * ||e||_p``
    with ``y_k = exp(z_k - z_{k*})`` and ``r = sum_{k != k*} y_k``, which is the formula
    above rearranged so that ``1 - c`` never suffers cancellation when ``c`` is near 1.
    For very small temperatures the ``y_k`` underflow and scores may become 0; the log
    scores (``return_log=True``) are then recomputed by log-sum-exp and stay exact.

    References
    ----------
    .. [1] B. Peng, J. Lu, Y. Zhang, Z. Fang, "On the Provable Importance of Gradients for
       Language-Assisted Image Clustering", ICCV 2025, arXiv:2510.16335.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm import gradnorm_scores
    >>> centers = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> nouns = np.array([[1.0, 0.0], [0.7071, 0.7071]])
    >>> scores, assignments = gradnorm_scores(nouns, centers, temperature=0.1)
    >>> assignments
    array([0, 0])
    >>> bool(scores[0] < scores[1])  # the first noun is confidently close to centre 0
    True
    """
    temperature, p = float(temperature), float(p)
    E, W = _validate_bank_and_centers(noun_embeddings, centers)
    stats = _center_softmax_stats(
        E, W, temperature=temperature, p=p, device=device, chunk_size=chunk_size, log=return_log
    )
    norms_p = _row_p_norms(E, p)
    scores = _gradnorm_from_stats(stats, norms_p.astype(stats.rest.dtype, copy=False), p)
    scores = scores.astype(stats.rest.dtype, copy=False)
    if not return_log:
        return scores, stats.assignments
    with np.errstate(divide="ignore"):
        log_norms = np.log(norms_p.astype(np.float64))
    return scores, stats.assignments, _log_gradnorm_from_stats(stats, log_norms, p)


@validate_params({**_ARRAYS, **COMPUTE_PARAMS}, prefer_skip_nested_validation=True)
def tac_scores(noun_embeddings, centers, *, device=None, chunk_size=None):
    """TAC's filter score: ``1 - confidence`` of a softmax over raw cosine similarities.

    TAC keeps, per centre, the nouns with the highest confidence ``c = max softmax(W e)``
    (no temperature). Returned as ``1 - c`` so that, as for GradNorm, smaller is better.

    Returns
    -------
    scores : ndarray of shape (n_nouns,)
    assignments : ndarray of shape (n_nouns,), dtype int64
    """
    E, W = _validate_bank_and_centers(noun_embeddings, centers)
    stats = _center_softmax_stats(E, W, temperature=1.0, device=device, chunk_size=chunk_size)
    return stats.rest / (1.0 + stats.rest), stats.assignments


@validate_params(
    {**_ARRAYS, "uniqueness_threshold": [Interval(Real, 0, 2, closed="both")], **COMPUTE_PARAMS},
    prefer_skip_nested_validation=True,
)
def sic_scores(noun_embeddings, centers, *, uniqueness_threshold, device=None, chunk_size=None):
    """SIC's filter score: negative cosine to the nearest centre, after a uniqueness filter.

    SIC drops the nouns whose cosine to the mean noun embedding is at least
    ``1 - uniqueness_threshold`` (generic nouns close to everything), then keeps per centre
    the nouns most similar to it. Dropped nouns get the score ``+inf`` (never selected);
    the others ``-max_k cos(w_k, e)``, so that smaller is better. Inputs must have unit rows.

    Returns
    -------
    scores : ndarray of shape (n_nouns,)
    assignments : ndarray of shape (n_nouns,), dtype int64
    """
    E, W = _validate_bank_and_centers(noun_embeddings, centers)
    stats = _center_softmax_stats(E, W, temperature=1.0, device=device, chunk_size=chunk_size)
    E_np = E.cpu().numpy() if isinstance(E, torch.Tensor) else E
    mean = E_np.mean(axis=0)
    mean_norm = np.linalg.norm(mean)
    to_mean = E_np @ (mean / mean_norm) if mean_norm > 0 else np.zeros(E_np.shape[0], E_np.dtype)
    scores = -stats.max_logit
    scores[to_mean >= 1.0 - uniqueness_threshold] = np.inf
    return scores, stats.assignments


@validate_params(
    {
        "scores": ["array-like"],
        "assignments": ["array-like"],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "tiebreak": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def select_top_k_per_center(scores, assignments, top_k, *, tiebreak=None):
    """Indices of the ``top_k`` nouns with the smallest scores within each centre.

    Nouns with an infinite or NaN score are never selected. Ties are broken by ``tiebreak``
    (smaller first) when given, then by noun index (stable order). The result is ordered by
    centre, then by rank within the centre.

    Parameters
    ----------
    scores : array-like of shape (n_nouns,)
        Filter scores, smaller is better.
    assignments : array-like of shape (n_nouns,)
        Each noun's centre.
    top_k : int
        Nouns kept per centre.
    tiebreak : array-like of shape (n_nouns,) or None, default=None
        A second key for equal scores, such as the log scores of :func:`gradnorm_scores`
        (``return_log=True``), which still order nouns whose scores underflowed to 0.

    Returns
    -------
    selected : ndarray of shape (n_selected,), int64
        Indices of the kept nouns.

    Examples
    --------
    >>> import numpy as np
    >>> select_top_k_per_center(np.array([0.3, 0.1, 0.2, 0.5]), np.array([0, 0, 1, 0]), 2)
    array([1, 0, 2])
    """
    scores = np.asarray(scores)
    assignments = np.asarray(assignments)
    # lexsort is stable: it sorts by the last key (centre), then score, then the
    # tie-break key (if any), then original index.
    keys = (
        (scores, assignments) if tiebreak is None else (np.asarray(tiebreak), scores, assignments)
    )
    order = np.lexsort(keys)
    sorted_centers = assignments[order]
    starts = np.flatnonzero(np.r_[True, sorted_centers[1:] != sorted_centers[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, order.size]))
    rank = np.arange(order.size) - group_start
    keep = (rank < top_k) & np.isfinite(scores[order])
    return order[keep]
