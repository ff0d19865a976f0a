"""Crash-safe file writing and hang-free reading, shared by the on-disk caches.

* :func:`atomic_write` writes a file through a temporary name in the same folder, fsyncs it
  and renames it into place, so a reader never sees half a file and a killed run leaves at
  worst a temporary file (``.<name>.<random>.tmp``), which :func:`remove_orphan_temps`
  deletes once it is old enough to be certainly abandoned.
* :func:`open_regular` opens a file for reading only if it is a regular file. It opens
  with ``O_NONBLOCK`` and checks ``fstat`` on the open descriptor, so a FIFO or a device
  planted where a cache file should be can neither block the run nor be read.
* :func:`file_fingerprint` identifies a file's current version cheaply (its inode, size,
  times and a hash of its first and last MiB): what a memo of a file's full hash is keyed
  on, so that a file replaced by another of the same size with its modification time
  kept is not mistaken for the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path

__all__ = [
    "ORPHAN_TEMP_AGE_S",
    "NotARegularFileError",
    "atomic_write",
    "atomic_write_json",
    "file_fingerprint",
    "open_regular",
    "read_regular_bytes",
    "remove_orphan_temps",
]

#: A temporary file untouched for this long is left over from a killed run. Writing one
#: cache file (a few MB) takes well under a second, so five minutes is a wide margin.
ORPHAN_TEMP_AGE_S = 300.0

_EDGE_BYTES = 1 << 20  # the first and last MiB go into a file's fingerprint


class NotARegularFileError(OSError):
    """A path that should be a regular file is a FIFO, a device, a folder or a socket."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> None:
    """Write ``path`` by ``write(fh)`` into a temporary file beside it, fsync, rename.

    Raises ``OSError`` (read-only folder, full disk, ...) after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path, obj) -> None:
    data = json.dumps(obj, indent=1, sort_keys=True).encode("ascii")  # \u escapes: any str
    atomic_write(path, lambda fh: fh.write(data))


def open_regular(path):
    """Open ``path`` for binary reading if it is a regular file (never blocks).

    Raises ``FileNotFoundError`` when it does not exist and :class:`NotARegularFileError`
    (an ``OSError``) when it is a FIFO, a device, a socket or a folder.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFileError(f"{os.fspath(path)} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`)."""
    with open_regular(path) as fh:
        return fh.read()


def file_fingerprint(path) -> str:
    """A cheap identity of a file's current version (no full read).

    Device, inode, size, modification and change times (``st_ctime_ns`` cannot be set back
    by users) and the SHA-256 of the first and last MiB. Any of these changes when a file
    is rewritten or replaced, even with the same size and a restored modification time.
    """
    with open_regular(path) as fh:
        st = os.fstat(fh.fileno())
        h = hashlib.sha256(fh.read(_EDGE_BYTES))
        if st.st_size > _EDGE_BYTES:
            fh.seek(max(_EDGE_BYTES, st.st_size - _EDGE_BYTES))
            h.update(fh.read(_EDGE_BYTES))
    return (
        f"dev={st.st_dev},ino={st.st_ino},size={st.st_size},mtime={st.st_mtime_ns},"
        f"ctime={st.st_ctime_ns},edges={h.hexdigest()}"
    )


def remove_orphan_temps(directory, *, older_than_s: float = ORPHAN_TEMP_AGE_S) -> int:
    """Delete ``.*.tmp`` files in ``directory`` not modified for ``older_than_s`` seconds.

    Returns how many were removed; errors (a vanished file, a read-only folder) are ignored.
    """
    removed = 0
    now = time.time()
    try:
        candidates = list(Path(directory).glob(".*.tmp"))
    except OSError:
        return 0
    for path in candidates:
        try:
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
