"""An embeddings folder (EMB_DIR): ``.npy`` partitions with a manifest, resumable, read lazily.

Layout::

    manifest.json        what the folder holds: number of images, partition size, encoder
    paths.txt            the image paths, one a line, in the order of the rows
    part_00000.npy       float32 rows of partition 0 (L2-normalised image embeddings)
    part_00000.json      {"sha256": ..., "shape": [...], "run": ...}: written last
    part_00001.npy ...

A partition counts as done only when its sidecar exists and the array matches it (shape,
dtype, SHA-256 of the bytes), and when the sidecar records the same images and model as
the job that finds it: ``contents`` (a SHA-256 of the SHA-256 of every image file's bytes,
so an image edited in place is embedded again) and ``model`` (the encoder's
:meth:`~skgradnorm.CLIPEncoder.model_key`, which identifies the weights by their bytes).
Both files are written atomically (a temporary file in the same folder, then
:func:`os.replace`), so a worker killed while writing leaves no partition that looks
finished. The sidecar's ``run`` names the job that wrote it, which shows which
partitions a resumed job computed. Arrays are read with ``allow_pickle=False``.

A plain folder of ``.npy`` files was chosen over zarr so that reading needs nothing beyond
numpy and dask (zarr is not a dependency), and each partition stays a file that one worker
writes on its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import numpy as np

from .._utils._safe_files import atomic_write

FORMAT = "skgradnorm.embeddings"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PATHS = "paths.txt"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """The package's one atomic writer (temporary file, fsync, rename) for bytes."""
    atomic_write(path, data)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode("utf-8")


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def paths_sha256(paths) -> str:
    """SHA-256 identifying an ordered list of paths."""
    return hashlib.sha256(json.dumps(list(paths), ensure_ascii=False).encode("utf-8")).hexdigest()


def partition_bounds(n: int, partition_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of consecutive partitions covering ``range(n)``."""
    return [(s, min(n, s + partition_size)) for s in range(0, n, partition_size)]


def part_paths(folder: Path, index: int) -> tuple[Path, Path]:
    stem = f"part_{index:05d}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def contents_sha256(paths) -> str:
    """SHA-256 of the contents of the image files ``paths``, in order.

    A file that cannot be read counts by its error, so that the embedding (which reports
    every unreadable image at once) fails with its own clear error, not this one.
    """
    from .._clip._image_cache import file_content_sha256

    h = hashlib.sha256()
    for path in paths:
        try:
            h.update(file_content_sha256(path).encode("ascii"))
        except OSError as exc:
            h.update(f"unreadable:{type(exc).__name__}".encode())
    return h.hexdigest()


def save_partition(folder, index: int, array: np.ndarray, run: str, record=None) -> None:
    """Store partition ``index`` atomically: the array first, then its sidecar (with
    ``record``: the ``contents`` and ``model`` it was made from)."""
    folder = Path(folder)
    array = np.ascontiguousarray(array, dtype=np.float32)
    array_path, meta_path = part_paths(folder, index)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    _atomic_write_bytes(array_path, buffer.getvalue())
    meta = {"sha256": _array_sha256(array), "shape": list(array.shape), "dtype": "float32"}
    meta.update(record or {})
    _atomic_write_bytes(meta_path, _json_bytes(dict(meta, partition=index, run=run)))


def read_sidecar(folder, index: int) -> dict | None:
    """The sidecar of partition ``index``, or ``None`` when it is missing or unreadable."""
    meta_path = part_paths(Path(folder), index)[1]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def partition_is_done(folder, index: int, n_rows: int, record=None) -> bool:
    """Whether partition ``index`` holds ``n_rows`` rows that match its sidecar's checksum
    (and, with ``record``, were made from the same ``contents`` by the same ``model``)."""
    meta = read_sidecar(folder, index)
    if meta is None:
        return False
    if record is not None and any(meta.get(k) != v for k, v in record.items()):
        return False
    try:
        array = _open_partition(part_paths(Path(folder), index)[0])
    except (OSError, ValueError, EOFError):
        return False
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != n_rows:
        return False
    return meta.get("sha256") == _array_sha256(array)


def _open_partition(path) -> np.ndarray:
    """A partition's array, memory-mapped; anything but a regular file (a folder, or a FIFO
    that would block ``open``) is refused before it is opened."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError("not a regular file")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def load_partition(path: str, sha256=None, n_rows=None) -> np.ndarray:
    """One partition, memory-mapped (read lazily by dask, one task per partition), checked
    against its sidecar: ``n_rows`` float32 rows whose bytes have the SHA-256 ``sha256``.

    A partition damaged since it was written (a flipped byte, a truncated file, a folder or
    a FIFO in its place) raises :class:`~skgradnorm.exceptions.IncompleteEmbeddingsError`
    naming it: it is never clustered.
    """
    from ..exceptions import IncompleteEmbeddingsError

    def damaged(why):
        return IncompleteEmbeddingsError(
            f"{path!r} is damaged ({why}); run the same embedding job again, which computes "
            "damaged partitions again."
        )

    try:
        array = _open_partition(path)
    except (OSError, ValueError, EOFError) as exc:
        raise damaged(getattr(exc, "strerror", None) or str(exc).splitlines()[0]) from None
    if n_rows is not None and (
        array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != n_rows
    ):
        raise damaged(f"{array.dtype} array of shape {array.shape}, not {n_rows} float32 rows")
    if sha256 is not None and _array_sha256(array) != sha256:
        raise damaged("its bytes do not match the SHA-256 in its sidecar")
    return array


def write_manifest(folder: Path, manifest: dict, paths) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{p}\n" for p in paths)
    _atomic_write_bytes(folder / PATHS, text.encode("utf-8"))
    _atomic_write_bytes(folder / MANIFEST, _json_bytes(manifest))


def read_manifest(folder) -> dict | None:
    """The folder's manifest, ``None`` if it has none; ``ValueError`` if it is not ours."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a skgradnorm embeddings manifest.")
    if manifest.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {manifest.get('version')!r}; this skgradnorm "
            f"reads version {FORMAT_VERSION}. Embed the images again into a new folder."
        )
    return manifest


def read_paths(folder) -> list[str]:
    from .._utils._safe_files import read_regular_bytes
    from ..exceptions import IncompleteEmbeddingsError

    path = Path(folder) / PATHS
    try:
        return read_regular_bytes(path).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise IncompleteEmbeddingsError(
            f"cannot read {str(path)!r} ({why}), which lists the images in row order; run the "
            "same embedding job again to write it."
        ) from None


def check_paths(paths) -> list[str]:
    """The paths as a list of ``str``, checked (one-line errors, before any work)."""
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(
            "paths must be a list of image paths, not one path; for a folder use "
            "skgradnorm.distributed.embed_directory(image_dir, out_dir)."
        )
    try:
        paths = [os.fspath(p) for p in paths]
    except TypeError:
        raise TypeError(
            "paths must be a sequence of image file paths (str or pathlib.Path); other image "
            "kinds (PIL images, arrays) cannot be sent to a cluster: save them to files first."
        ) from None
    if not paths:
        raise ValueError("paths is empty; give at least one image path.")
    for p in paths:
        if "\n" in p or "\r" in p:
            raise ValueError(f"image path {p!r} contains a line break; rename the file.")
    return paths
