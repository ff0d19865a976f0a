"""On-disk cache of image embeddings, keyed by each file's content and by the model.

Embedding a collection of images is the slow step of a rerun (for example with another
number of clusters), so :meth:`CLIPEncoder.transform <skgradnorm.CLIPEncoder.transform>`
keeps the embedding of every image *file* it embeds, when its cache is enabled. An entry is
found again by the SHA-256 of the file's bytes (renaming or moving a file keeps it; editing
it does not), under a folder named after the model key: the architecture, the identity of
the weights, the precision, the preprocessing, the decoding rules and the library versions
(:func:`image_model_key`). Images given as arrays or PIL images are not cached.

Layout, under ``<cache root>/image_embeddings/<key digest>/``::

    key.json                the full model key, for people
    ab/abcdef....emb        one entry per image file content (SHA-256 of the file)

An entry is 32 bytes of SHA-256 of the payload followed by the float32 embedding
(little-endian): nothing is unpickled, and a damaged entry (wrong length, wrong checksum)
is never used: it is counted, reported in one :class:`CacheCorruptionWarning` and
embedded again. Entries are written atomically (``_safe_files.atomic_write``). A folder
that cannot be written gives one :class:`CacheUnavailableWarning`; the embeddings are
still returned.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .._utils._safe_files import atomic_write, atomic_write_json, open_regular, read_regular_bytes
from ..exceptions import CacheCorruptionWarning, CacheUnavailableWarning

__all__ = ["ImageEmbeddingCache", "embed_with_cache", "file_content_sha256", "image_model_key"]

logger = logging.getLogger(__name__)

#: Bumped whenever the entry layout or the way images are decoded changes.
IMAGE_CACHE_FORMAT = 1
_DIGEST_BYTES = 32
_BLOCK = 1 << 20


def file_content_sha256(path) -> str:
    """SHA-256 of the bytes of the (regular) file at ``path``."""
    h = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def bundle_model_key(bundle, cache_root) -> dict:
    """:func:`image_model_key` of a loaded model bundle (its weights identified with the
    help of the memo under ``cache_root``)."""
    return image_model_key(
        arch_name=bundle.arch_name,
        weights=bundle.weights_identity(cache_root),
        precision=bundle.precision,
        preprocess=bundle.preprocess,
    )


def image_cache_for(bundle, cache_root):
    """The image-embedding cache of a loaded model, or ``None`` (cache off, random weights)."""
    if cache_root is None or bundle.source_kind == "random":
        return None
    return ImageEmbeddingCache(cache_root, bundle_model_key(bundle, cache_root), bundle.embed_dim)


def image_model_key(*, arch_name, weights, precision, preprocess) -> dict:
    """Everything about the model that changes an image embedding, as a JSON-able dict.

    The same identity as the noun cache's (architecture, weights identity, precision,
    versions), plus the preprocessing transform (its ``repr``: sizes, crop, normalisation)
    and the image decoding rules of this package (:data:`IMAGE_CACHE_FORMAT`).
    """
    import PIL
    import torch

    from .._utils._compat import import_open_clip

    open_clip = import_open_clip()
    return {
        "model": arch_name,
        "weights": weights,
        "precision": precision,
        "preprocess": repr(preprocess),
        "decoding": IMAGE_CACHE_FORMAT,
        "versions": {
            "open_clip": open_clip.__version__,
            "torch": torch.__version__,
            "pillow": PIL.__version__,
        },
    }


class ImageEmbeddingCache:
    """Image embeddings by file content, for one model key.

    Parameters
    ----------
    root : path-like
        The cache root (shared with the noun cache).
    key : dict
        The model key (:func:`image_model_key`).
    dim : int
        The embedding dimension; entries of another length count as damaged.
    """

    def __init__(self, root, key: dict, dim: int):
        from ._noun_cache import key_digest

        self.key = dict(key)
        self.dim = int(dim)
        self.root = Path(root)
        self.directory = self.root / "image_embeddings" / key_digest(self.key)[:32]
        self.available = True
        self.damaged = 0

    def _path(self, digest: str) -> Path:
        return self.directory / digest[:2] / f"{digest}.emb"

    def get(self, digest: str) -> np.ndarray | None:
        """The stored embedding of the file with content ``digest``, or ``None``."""
        try:
            data = read_regular_bytes(self._path(digest))
        except (FileNotFoundError, NotADirectoryError):
            return None  # not stored (or no cache folder at all)
        except OSError:  # not a regular file, unreadable: recompute (counted)
            self.damaged += 1
            return None
        payload = data[_DIGEST_BYTES:]
        if len(payload) != 4 * self.dim or hashlib.sha256(payload).digest() != data[:_DIGEST_BYTES]:
            self.damaged += 1
            return None
        return np.frombuffer(payload, dtype="<f4").astype(np.float32)

    def put(self, digest: str, embedding: np.ndarray) -> None:
        """Store one embedding; after a write failure, warn once and stop writing."""
        if not self.available:
            return
        payload = np.ascontiguousarray(embedding, dtype="<f4").tobytes()
        record = hashlib.sha256(payload).digest() + payload
        try:
            if not (self.directory / "key.json").exists():
                atomic_write_json(self.directory / "key.json", self.key)
            atomic_write(self._path(digest), lambda fh: fh.write(record))
        except OSError as exc:
            self.available = False
            warnings.warn(
                f"the image-embedding cache in {self.directory} cannot be written "
                f"({type(exc).__name__}: {exc}); the images are embedded without it and "
                "will be embedded again next time. Pass a writable cache_dir (or "
                "cache_dir=False to silence this).",
                CacheUnavailableWarning,
                stacklevel=3,
            )

    def report_damage(self) -> None:
        """One warning for all the damaged entries met so far (they were recomputed)."""
        if self.damaged:
            warnings.warn(
                f"{self.damaged} image-embedding cache entries in {self.directory} were "
                "damaged; they were ignored, embedded again and rewritten.",
                CacheCorruptionWarning,
                stacklevel=3,
            )
            self.damaged = 0


def embed_with_cache(items, embed, cache: ImageEmbeddingCache | None) -> np.ndarray:
    """Embed ``items``, taking the embeddings of files from ``cache`` and storing new ones.

    ``embed(list_of_items, positions) -> ndarray (n, d)`` embeds what is not cached
    (``positions`` are the items' indices in ``items``, for error messages);
    Only the items that are file paths (str or path-like) are cached.
    """
    if cache is None:
        return embed(items, list(range(len(items))))
    digests = {}
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            digests[i] = file_content_sha256(item)
    found = {}
    for i, digest in digests.items():
        row = cache.get(digest)
        if row is not None:
            found[i] = row
    todo = [i for i in range(len(items)) if i not in found]
    if found:
        logger.info(
            "image cache %s: %d of %d images found", cache.directory, len(found), len(items)
        )
    out = np.empty((len(items), cache.dim), dtype=np.float32)
    for i, row in found.items():
        out[i] = row
    if todo:
        computed = embed([items[i] for i in todo], todo)
        out[todo] = computed
        for i, row in zip(todo, computed, strict=True):
            if i in digests:
                cache.put(digests[i], row)
    cache.report_damage()
    return out
