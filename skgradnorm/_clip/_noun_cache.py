"""On-disk cache of noun-bank embeddings, computed in resumable, checksummed chunks.

Embedding the default WordNet noun bank (119,034 distinct nouns x 7 prompt templates, some
833k prompts) takes hours on a CPU, so its embeddings are computed once and reused. The
cache is keyed by everything that changes them: the model, the identity of its weights, the
vocabulary, the templates, the precision and the versions of open_clip and torch.

Layout, under ``<cache root>/noun_embeddings/<key digest>/``::

    key.json             the full key, for people (the folder name is its digest)
    chunk_00000.npy      float32 array (rows of chunk 0, d), L2-normalised rows
    chunk_00000.json     {"sha256": ..., "shape": [...], "dtype": "float32", ...}
    chunk_00001.npy ...

The vocabulary is cut into chunks of ``DEFAULT_CHUNK_SIZE`` nouns. Each finished chunk is
written atomically (temporary file in the same folder, fsync, ``os.replace``): first the
array, then its sidecar with the SHA-256 of the array bytes. A chunk counts as done only
when its sidecar exists, so a run killed halfway resumes from the chunks already written. A
chunk whose sidecar exists but whose array is missing, unreadable, of the wrong shape or
dtype, or whose bytes do not match the checksum, is reported with a
:class:`CacheCorruptionWarning` and computed again; it is never used; so is a chunk whose
files are not regular files (a FIFO is never opened in a blocking way). Arrays are loaded
with ``allow_pickle=False``: nothing in the cache is ever unpickled.

A cache folder that cannot be written (read-only, not a folder, disk full) gives one
:class:`CacheUnavailableWarning` and the nouns are embedded without it. Temporary files
left by a killed run are deleted once they are a few minutes old.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from .._utils._safe_files import (
    atomic_write,
    atomic_write_json,
    file_fingerprint,
    open_regular,
    read_regular_bytes,
    remove_orphan_temps,
)
from ..exceptions import CacheCorruptionWarning

__all__ = [
    "CacheCorruptionWarning",
    "DEFAULT_CHUNK_SIZE",
    "NounEmbeddingCache",
    "default_cache_dir",
    "file_sha256",
    "noun_cache_key",
    "resolve_cache_dir",
    "vocabulary_sha256",
]

logger = logging.getLogger(__name__)

#: Nouns per chunk: the unit of work that is written, checksummed and resumed.
DEFAULT_CHUNK_SIZE = 4096
#: Bumped whenever the layout or the way embeddings are computed changes.
CACHE_FORMAT_VERSION = 1
#: Environment variable that overrides the default cache folder.
CACHE_ENV_VAR = "SKGRADNORM_CACHE"

_HASH_BLOCK = 1 << 20
_FILE_HASHES: dict[tuple[str, str], str] = {}
_FILE_HASHES_NAME = "file_hashes.json"


# --------------------------------------------------------------------------- locations


def default_cache_dir() -> Path:
    """The default cache folder: ``$SKGRADNORM_CACHE``, else ``$XDG_CACHE_HOME/skgradnorm``,
    else ``~/.cache/skgradnorm``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "skgradnorm"


def resolve_cache_dir(cache_dir) -> Path | None:
    """``None`` -> :func:`default_cache_dir`, ``False`` -> ``None`` (no cache), else a Path."""
    if cache_dir is False:
        return None
    if cache_dir is None:
        return default_cache_dir()
    if cache_dir is True:
        raise ValueError("cache_dir=True is ambiguous; use None for the default folder or a path.")
    return Path(os.fspath(cache_dir)).expanduser()


# --------------------------------------------------------------------------- atomic files


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


# --------------------------------------------------------------------------- key parts


def vocabulary_sha256(nouns) -> str:
    """SHA-256 identifying a vocabulary (order and exact strings matter)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(nouns), ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def file_sha256(path, *, cache_root: Path | None = None) -> str:
    """SHA-256 of a file's bytes, remembered per version of the file.

    Hashing a weights file takes a second or two per GB, so the digest is kept in memory
    and, when ``cache_root`` is given, in ``<cache_root>/file_hashes.json``. It is reused
    only while the file's :func:`~._safe_files.file_fingerprint` is unchanged: inode, size,
    modification and change times, and a hash of its first and last MiB. A file replaced
    by another of the same size whose modification time was restored is hashed again.
    """
    path = Path(path).resolve()
    fingerprint = file_fingerprint(path)
    memo_key = (str(path), fingerprint)
    if memo_key in _FILE_HASHES:
        return _FILE_HASHES[memo_key]
    disk_key = f"{path}|{fingerprint}"
    table_path = cache_root / _FILE_HASHES_NAME if cache_root is not None else None
    table = {}
    if table_path is not None:
        try:
            table = json.loads(read_regular_bytes(table_path).decode("utf-8"))
            if not isinstance(table, dict):
                table = {}
        except Exception:  # missing, not a regular file, damaged: start a new table
            table = {}
    digest = table.get(disk_key)
    if not (isinstance(digest, str) and len(digest) == 64):
        h = hashlib.sha256()
        with open_regular(path) as fh:
            for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
                h.update(block)
        digest = h.hexdigest()
        if table_path is not None:
            # One entry per path: older versions of this file are forgotten.
            table = {k: v for k, v in table.items() if not k.startswith(f"{path}|")}
            table[disk_key] = digest
            try:
                atomic_write_json(table_path, table)
            except OSError as exc:  # a read-only cache still works, just slower
                logger.info("could not record the hash of %s: %s", path, exc)
    _FILE_HASHES[memo_key] = digest
    return digest


def key_digest(key: dict) -> str:
    """Stable digest of a JSON-serialisable key."""
    data = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the cache


def noun_cache_key(*, arch_name, weights, nouns, templates, precision) -> dict:
    """The cache key of a noun bank: everything that changes its embeddings.

    ``weights`` identifies the weights (see ``CLIPEncoder``'s model bundle: the SHA-256 of a
    local file, or the open_clip tag). The library versions are part of the key, so an
    upgrade of open_clip or torch recomputes the bank rather than mixing embeddings.
    """
    import torch

    from .._utils._compat import import_open_clip

    open_clip = import_open_clip()
    return {
        "model": arch_name,
        "weights": weights,
        "vocabulary_sha256": vocabulary_sha256(nouns),
        "n_nouns": len(nouns),
        "templates": list(templates),
        "precision": precision,
        "aggregation": "mean of raw prompt embeddings, then L2",
        "versions": {"open_clip": open_clip.__version__, "torch": torch.__version__},
    }


class NounEmbeddingCache:
    """Chunked, checksummed, resumable storage of one set of noun embeddings.

    Parameters
    ----------
    root : path-like
        The cache root (see :func:`resolve_cache_dir`).
    key : dict
        JSON-serialisable description of everything that changes the embeddings. The
        chunk size is added to it.
    chunk_size : int, default=DEFAULT_CHUNK_SIZE
        Nouns per chunk.
    """

    def __init__(self, root, key: dict, chunk_size: int = DEFAULT_CHUNK_SIZE):
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1; got {chunk_size!r}.")
        self.chunk_size = int(chunk_size)
        self.key = dict(key, format=CACHE_FORMAT_VERSION, chunk_size=self.chunk_size)
        self.digest = key_digest(self.key)
        self.root = Path(root)
        self.directory = self.root / "noun_embeddings" / self.digest[:32]

    def _paths(self, index: int) -> tuple[Path, Path]:
        stem = f"chunk_{index:05d}"
        return self.directory / f"{stem}.npy", self.directory / f"{stem}.json"

    def _damaged(self, index: int, why: str) -> None:
        warnings.warn(
            f"noun-embedding cache chunk {index} in {self.directory} is damaged ({why}); "
            "it is ignored and computed again.",
            CacheCorruptionWarning,
            stacklevel=4,
        )

    def load_chunk(self, index: int, n_rows: int, dim: int | None = None) -> np.ndarray | None:
        """The stored chunk, or ``None`` if it is not done yet or is damaged (warned).

        Never raises for a damaged chunk: whatever is wrong with its files (unreadable,
        truncated, a flipped byte anywhere, not a regular file), it is reported with a
        :class:`CacheCorruptionWarning` and ``None`` is returned, so it is computed again.
        """
        array_path, meta_path = self._paths(index)
        try:
            meta_bytes = read_regular_bytes(meta_path)
        except FileNotFoundError:
            return None  # never finished (a run killed before the sidecar was written)
        except OSError as exc:
            self._damaged(index, f"unreadable checksum file: {exc}")
            return None
        try:
            meta = json.loads(meta_bytes.decode("utf-8"))
            expected_sha = meta["sha256"]
        except Exception as exc:  # any damage to the sidecar: bad UTF-8, JSON, fields
            self._damaged(index, f"unreadable checksum file: {type(exc).__name__}: {exc}")
            return None
        try:
            with open_regular(array_path) as fh:
                array = np.load(fh, allow_pickle=False)
        except FileNotFoundError:
            self._damaged(index, "array file missing")
            return None
        except Exception as exc:
            # A damaged .npy header can raise almost anything from numpy's parser
            # (ValueError, EOFError, SyntaxError, tokenize.TokenError, ...).
            self._damaged(index, f"unreadable array file: {type(exc).__name__}: {exc}")
            return None
        if (
            not isinstance(array, np.ndarray)
            or array.dtype != np.float32
            or array.ndim != 2
            or array.shape[0] != n_rows
        ):
            found = f"{getattr(array, 'dtype', type(array).__name__)} {np.shape(array)}"
            self._damaged(index, f"expected float32 array with {n_rows} rows, found {found}")
            return None
        if dim is not None and array.shape[1] != dim:
            self._damaged(index, f"expected {dim} columns, found {array.shape[1]}")
            return None
        if _array_sha256(array) != expected_sha:
            self._damaged(index, "checksum mismatch")
            return None
        return array

    def save_chunk(self, index: int, array: np.ndarray) -> None:
        """Store a finished chunk atomically: the array first, then its checksum sidecar.

        Raises ``OSError`` when the cache folder cannot be written (read-only, full).
        """
        array = np.ascontiguousarray(array, dtype=np.float32)
        array_path, meta_path = self._paths(index)
        if not (self.directory / "key.json").exists():
            atomic_write_json(self.directory / "key.json", self.key)
        atomic_write(array_path, lambda fh: np.save(fh, array, allow_pickle=False))
        atomic_write_json(
            meta_path,
            {
                "sha256": _array_sha256(array),
                "shape": list(array.shape),
                "dtype": "float32",
                "chunk": index,
                "chunk_size": self.chunk_size,
            },
        )
        self.remove_orphans()

    def has_chunk(self, index: int) -> bool:
        """Whether chunk ``index`` looks finished (both files are regular files); cheap.

        Used to count what is left to compute; :meth:`load_chunk` does the real checks.
        """
        try:
            return all(stat.S_ISREG(os.stat(p).st_mode) for p in self._paths(index))
        except OSError:
            return False

    def check_folder(self) -> None:
        """Raise ``OSError`` if the cache folder exists but cannot be a folder of chunks.

        A folder that does not exist yet is fine (it is created on the first write).
        """
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.directory))

    def remove_orphans(self) -> int:
        """Delete temporary files left by killed runs (untouched for several minutes)."""
        return len(remove_orphan_temps(self.directory))
