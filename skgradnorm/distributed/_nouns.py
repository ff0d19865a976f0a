"""Embed the noun bank on a Dask cluster: one task per chunk of the encoder's noun cache.

:meth:`skgradnorm.CLIPEncoder.encode_nouns` computes the bank chunk by chunk into a resumable
on-disk cache (``skgradnorm._clip._noun_cache``); here the same chunks are computed by the workers
in parallel and written into the same cache, so that a later ``encoder.encode_nouns(nouns)``
(on any machine that sees the cache folder) finds every chunk and computes nothing.

The cache key must be the one ``encode_nouns`` builds. ``CLIPEncoder`` does not expose it,
so :func:`noun_cache_for` rebuilds it from the encoder's public parameters, as the encoder
resolves them on the worker (device, precision, weights). If the two ever drift apart, the
only effect is that ``encode_nouns`` misses the cache and computes the bank itself; the test
suite checks that they agree.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from .._clip import _noun_cache
from ._workers import raise_first_error, resolve_client, run_with_worker_encoder

_LOCAL_DIR = "local-dir:"
_HF_HUB = "hf-hub:"


def _device_type(device) -> str:
    # CLIPEncoder's rule for device=None (CUDA, then MPS, then CPU), as the worker sees it.
    import torch

    if device is not None:
        return torch.device(device).type
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def _weights_identity(model_name: str, pretrained, cache_root: Path):
    """``(architecture name, weights identity)`` as the encoder records them, or ``None``
    for random weights (which the encoder never caches)."""
    from .._utils._compat import import_open_clip

    def folder_identity(folder: Path) -> dict:
        files = {
            p.name: _noun_cache.file_sha256(p, cache_root=cache_root)
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }
        return {"kind": "local-dir", "files": files}

    if model_name.startswith(_LOCAL_DIR):
        folder = Path(model_name[len(_LOCAL_DIR) :]).expanduser()
        return f"{_LOCAL_DIR}{folder}", folder_identity(folder.resolve())
    if model_name.startswith(_HF_HUB):
        return model_name, {"kind": "hf-hub", "name": model_name}
    if pretrained is None:
        return None
    pretrained = os.fspath(pretrained)
    try:
        known = import_open_clip().list_pretrained_tags_by_model(model_name)
    except Exception:  # noqa: BLE001 - as the encoder: unknown names have no tags
        known = []
    if pretrained in known:
        return model_name, {"kind": "tag", "name": pretrained}
    if pretrained.startswith(_LOCAL_DIR):
        folder = Path(pretrained[len(_LOCAL_DIR) :]).expanduser()
        return f"{_LOCAL_DIR}{folder}", folder_identity(folder.resolve())
    path = Path(pretrained).expanduser()
    if path.is_dir():
        return f"{_LOCAL_DIR}{path}", folder_identity(path.resolve())
    if path.is_file():
        path = path.resolve()
        sha = _noun_cache.file_sha256(path, cache_root=cache_root)
        return model_name, {"kind": "file", "size": path.stat().st_size, "sha256": sha}
    return model_name, {"kind": "tag", "name": pretrained}


@validate_params(
    {
        "encoder": [HasMethods(["encode_nouns", "get_params"])],
        "nouns": ["array-like"],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def noun_cache_for(encoder, nouns, chunk_size=_noun_cache.DEFAULT_CHUNK_SIZE):
    """The :class:`NounEmbeddingCache` that ``encoder.encode_nouns(nouns)`` reads and fills.

    ``None`` when the encoder caches nothing (``cache_dir=False`` or random weights). With
    a ``chunk_size`` other than ``DEFAULT_CHUNK_SIZE`` the cache is a different one (the
    chunk size is part of its key), which ``encode_nouns`` does not read.
    """

    from ..vocabulary import PAPER_TEMPLATES

    params = encoder.get_params(deep=False)
    root = _noun_cache.resolve_cache_dir(params["cache_dir"])
    if root is None:
        return None
    source = _weights_identity(params["model_name"], params["pretrained"], root)
    if source is None:
        return None
    arch_name, weights = source
    precision = params["precision"]
    if precision is None:
        precision = "fp16" if _device_type(params["device"]) == "cuda" else "fp32"
    templates = PAPER_TEMPLATES if params["templates"] is None else params["templates"]
    key = _noun_cache.noun_cache_key(
        arch_name=arch_name, weights=weights, nouns=nouns, templates=templates, precision=precision
    )
    return _noun_cache.NounEmbeddingCache(root, key, chunk_size=chunk_size)


def _embed_chunk(encoder, nouns, cache, index):
    """One task: embed one chunk with this worker's model and store it in the cache."""
    emb = run_with_worker_encoder(
        encoder, {"verbose": False, "cache_dir": False}, "encode_nouns", nouns
    )
    if cache is None:
        return emb
    cache.save_chunk(index, emb)
    return emb.shape


def _check_nouns(nouns) -> list[str]:
    if isinstance(nouns, str):
        raise TypeError(f"nouns must be a list of strings, not one string; use [{nouns!r}].")
    nouns = list(nouns)
    if not nouns:
        raise ValueError("nouns is empty; give at least one noun.")
    bad = next((n for n in nouns if not isinstance(n, str)), None)
    if bad is not None:
        raise TypeError(f"nouns must all be strings; found {type(bad).__name__} {bad!r}.")
    return nouns


@validate_params(
    {
        "nouns": ["array-like", str],  # one string: a clearer error below
        "encoder": [HasMethods(["encode_nouns", "get_params"])],
        "client": [None, HasMethods(["submit"])],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def embed_nouns(nouns, encoder, *, client=None, chunk_size=_noun_cache.DEFAULT_CHUNK_SIZE):
    """Embed a noun bank on a Dask cluster, one chunk of the noun cache per task.

    The vocabulary is cut into the chunks of the encoder's noun cache; the chunks not yet in
    the cache are embedded by the workers in parallel (one model load per worker) and
    written into the cache as each finishes. A job that is interrupted resumes from the
    chunks written. Afterwards ``encoder.encode_nouns(nouns)`` finds every chunk and
    computes nothing.

    Parameters
    ----------
    nouns : sequence of str
        The vocabulary, e.g. :func:`skgradnorm.vocabulary.wordnet_nouns`.
    encoder : CLIPEncoder
        The encoder; its ``cache_dir`` must be a folder every worker can write (on several
        machines: a shared one). With ``cache_dir=False`` or random weights nothing is
        cached and the chunks are returned from the workers' memory.
    client : distributed.Client or None, default=None
        The cluster; ``None`` uses the default client if any, else this process.
    chunk_size : int, default=DEFAULT_CHUNK_SIZE
        Nouns per chunk (per task). Only the default (4096) gives the cache that
        ``encode_nouns`` reads; another size makes a separate cache, read by this function.

    Returns
    -------
    embeddings : ndarray of shape (n_nouns, embed_dim), float32
        L2-normalised noun embeddings, in the order of ``nouns``, equal to
        ``encoder.encode_nouns(nouns)``.

    See Also
    --------
    skgradnorm.CLIPEncoder.encode_nouns : the same on one machine.

    Notes
    -----
    A noun's embedding is the L2-normalised mean of the raw text embeddings of its prompts
    (one per template), :math:`e = m / \\lVert m \\rVert` with
    :math:`m = \\frac{1}{T} \\sum_{j=1}^{T} f(\\mathrm{template}_j(\\mathrm{noun}))`, as in
    Peng et al. (arXiv:2510.16335). Each noun is independent of the others, so the chunks
    can be computed in any order on any worker.

    Examples
    --------
    >>> from skgradnorm import CLIPEncoder
    >>> from skgradnorm.distributed import embed_nouns
    >>> from skgradnorm.vocabulary import wordnet_nouns
    >>> E = embed_nouns(wordnet_nouns(), CLIPEncoder(cache_dir="/shared/cache"))
    ... # doctest: +SKIP
    """
    nouns = _check_nouns(nouns)
    clone(encoder).fit()  # validates the parameters and templates; loads no model
    client, _ = resolve_client(client)
    if client is None:
        cache = noun_cache_for(encoder, nouns, chunk_size)
    else:  # the key depends on the device, precision and files as a worker sees them
        cache = client.submit(noun_cache_for, encoder, nouns, chunk_size, pure=False).result()
    starts = list(range(0, len(nouns), chunk_size))
    chunks = [nouns[s : s + chunk_size] for s in starts]
    pending = list(range(len(starts)))
    if cache is not None:
        pending = [i for i in pending if cache.load_chunk(i, len(chunks[i])) is None]
    if client is None:
        results = {i: _embed_chunk(encoder, chunks[i], cache, i) for i in pending}
    else:
        futures = {
            i: client.submit(_embed_chunk, encoder, chunks[i], cache, i, pure=False)
            for i in pending
        }
        raise_first_error(client, list(futures.values()))
        results = dict(zip(futures, client.gather(list(futures.values())), strict=True))
    if cache is None:
        return np.concatenate([results[i] for i in range(len(starts))])
    out = [cache.load_chunk(i, len(chunks[i])) for i in range(len(starts))]
    if any(a is None for a in out):  # pragma: no cover - the workers could not write the cache
        raise RuntimeError(
            f"the workers wrote noun-cache chunks that this process cannot read in "
            f"{cache.directory}; give the encoder a cache_dir shared by all machines."
        )
    return np.concatenate(out)
