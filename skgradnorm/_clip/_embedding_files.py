"""Saving image embeddings with their file names and model key, and reading them back.

:func:`save_embeddings` writes ``embeddings.npy`` (float32, one row per image) and a
sidecar ``embeddings.json`` (same name, ``.json`` suffix) holding the image names in row
order, the model key (:meth:`skgradnorm.CLIPEncoder.model_key`), the shape and the SHA-256
of the array. Both are written atomically (a temporary file, then a rename). The array is
written first and the sidecar last, so a run killed in between leaves a pair whose
checksum does not match, which :func:`load_embeddings` refuses instead of mixing runs.
Nothing is pickled, and arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._utils._safe_files import atomic_write, atomic_write_json, open_regular, read_regular_bytes
from ..exceptions import EmbeddingsFileError

__all__ = ["embeddings_sidecar", "load_embeddings", "save_embeddings"]

_FORMAT = "skgradnorm-embeddings"
_VERSION = 1


def embeddings_sidecar(path) -> Path:
    """The sidecar of an embeddings file: ``embeddings.npy`` -> ``embeddings.json``."""
    return Path(os.fspath(path)).with_suffix(".json")


def _array_sha256(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def save_embeddings(path, embeddings, names, model_key=None) -> Path:
    """Write ``embeddings`` to ``path`` (``.npy``) and its sidecar (``.json``).

    Parameters
    ----------
    path : str or path-like
        The array file, e.g. ``out/embeddings.npy``; the sidecar goes beside it
        (:func:`embeddings_sidecar`).
    embeddings : array-like of shape (n_images, dim)
        Finite values; stored as float32.
    names : sequence of str or path-like
        One name per row (e.g. the image paths relative to the image folder). Any name
        the operating system gives is kept exactly (JSON escapes make it ASCII).
    model_key : dict or None
        :meth:`CLIPEncoder.model_key`, checked by :func:`load_embeddings`.

    Returns
    -------
    sidecar : Path
    """
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"embeddings must be a non-empty 2-D array (images x dimensions); got shape "
            f"{array.shape}."
        )
    if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
        raise ValueError("embeddings must be finite numbers (no NaN or infinity).")
    array = np.ascontiguousarray(array, dtype=np.float32)
    names = [os.fsdecode(os.fspath(n)) if isinstance(n, (bytes, os.PathLike)) else n for n in names]
    if len(names) != array.shape[0] or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"names must be {array.shape[0]} strings, one per row of embeddings; got "
            f"{len(names)} items."
        )
    path = Path(os.fspath(path))
    sidecar = embeddings_sidecar(path)
    if sidecar == path:
        raise ValueError(f"{str(path)!r}: give the array file a suffix such as '.npy'.")
    atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))
    atomic_write_json(
        sidecar,
        {
            "format": _FORMAT,
            "version": _VERSION,
            "shape": list(array.shape),
            "dtype": "float32",
            "sha256": _array_sha256(array),
            "names": names,
            "model": model_key,
        },
    )
    return sidecar


def _model_differences(stored, expected) -> list[str]:
    if not isinstance(stored, dict):
        return ["no model recorded"]
    keys = sorted(set(stored) | set(expected))
    return [k for k in keys if stored.get(k) != expected.get(k)]


def load_embeddings(path, *, model_key=None):
    """Read embeddings written by :func:`save_embeddings`, checked against their sidecar.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file.
    model_key : dict or None
        If given (:meth:`CLIPEncoder.model_key` of the encoder in use), the stored key must
        be equal.

    Returns
    -------
    embeddings : ndarray of shape (n_images, dim), float32
    names : list of str
        One per row, as saved.
    model_key : dict or None
        The stored model key.

    Raises
    ------
    EmbeddingsFileError
        A one-line reason: a missing or damaged file or sidecar, a checksum that does not
        match, or embeddings of another model.
    """
    path = Path(os.fspath(path))
    sidecar = embeddings_sidecar(path)
    where = str(path)
    try:
        meta = json.loads(read_regular_bytes(sidecar).decode("ascii"))
    except FileNotFoundError:
        raise EmbeddingsFileError(
            f"{where}: its sidecar {sidecar.name} (image names and model) is missing; pass "
            "an embeddings file written by skgradnorm, with its .json beside it."
        ) from None
    except (OSError, ValueError) as exc:
        raise EmbeddingsFileError(
            f"{where}: its sidecar {sidecar.name} cannot be read ({type(exc).__name__}: "
            f"{exc}); write the embeddings again."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise EmbeddingsFileError(
            f"{where}: {sidecar.name} is not an skgradnorm embeddings sidecar; write the "
            "embeddings again."
        )
    try:
        with open_regular(path) as fh:
            array = np.load(fh, allow_pickle=False)
    except FileNotFoundError:
        raise EmbeddingsFileError(f"{where}: no such file.") from None
    except Exception as exc:  # a damaged .npy raises many types
        raise EmbeddingsFileError(
            f"{where}: not a readable .npy array ({type(exc).__name__}: {exc}); write the "
            "embeddings again."
        ) from None
    names = meta.get("names")
    if (
        not isinstance(array, np.ndarray)
        or array.dtype != np.float32
        or list(array.shape) != meta.get("shape")
        or _array_sha256(array) != meta.get("sha256")
        or not isinstance(names, list)
        or len(names) != array.shape[0]
        or not all(isinstance(n, str) for n in names)
    ):
        raise EmbeddingsFileError(
            f"{where} does not match its sidecar {sidecar.name} (damaged, or the two come "
            "from different runs); write the embeddings again."
        )
    stored_key = meta.get("model")
    if model_key is not None and stored_key != model_key:
        fields = ", ".join(_model_differences(stored_key, model_key))
        raise EmbeddingsFileError(
            f"{where} holds embeddings of another model (differs in: {fields}); use the "
            "model and weights they were made with, or embed the images again."
        )
    return array, names, stored_key
