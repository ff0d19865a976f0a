"""Crash-safe file writing and hang-free reading, for the caches and the output files.

One scheme for every file the package writes: the data goes to a temporary file beside its
destination, named ``.<name>.<random>.skgradnorm-tmp`` and created with ``O_EXCL |
O_NOFOLLOW``, is fsynced, then renamed into place with :func:`os.replace`. A reader never
sees half a file, nothing is ever written through a planted link, and a killed run leaves at
worst a temporary file, which :func:`remove_orphan_temps` deletes.

* :class:`StagedFiles` stages several files and renames them all only once every one is
  complete (the output folder: ``assignments.csv`` is never truncated, the old results stay
  whole); :func:`atomic_write` and :func:`atomic_write_json` stage and commit one file (the
  caches).
* :func:`refuse_link` refuses a symbolic link where a file is to be written.
* :func:`open_regular` opens a file for reading only if it is a regular file. It opens
  with ``O_NONBLOCK`` and checks ``fstat`` on the open descriptor, so a FIFO or a device
  planted where a cache file should be can neither block the run nor be read.
* :func:`file_fingerprint` identifies a file's current version cheaply (its inode, size,
  times and a hash of its first and last MiB): what a memo of a file's full hash is keyed
  on, so that a file replaced by another of the same size with its modification time
  kept is not mistaken for the old one.

The standard library has no atomic multi-file writer; this one is small (a temporary name,
``fsync``, ``os.replace``) and its edge cases (links, leftovers of a kill) are ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
from pathlib import Path

from ..exceptions import OutputFolderError

__all__ = [
    "ORPHAN_TEMP_AGE_S",
    "TMP_SUFFIX",
    "NotARegularFileError",
    "StagedFiles",
    "atomic_write",
    "atomic_write_json",
    "file_fingerprint",
    "open_regular",
    "read_regular_bytes",
    "refuse_link",
    "remove_orphan_temps",
]

#: Suffix of every temporary file (``.<name>.<random>.skgradnorm-tmp``) renamed into place.
TMP_SUFFIX = ".skgradnorm-tmp"

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


def refuse_link(path) -> None:
    """Raise :class:`OutputFolderError` if ``path`` is a symbolic link (even a dangling one)."""
    path = Path(path)
    if path.is_symlink():
        raise OutputFolderError(
            f"refusing to write {str(path)!r}: it is a symbolic link (to "
            f"{os.readlink(path)!r}); remove it or choose another output folder."
        )


class StagedFiles:
    """Files written to temporary names, renamed into place together by :meth:`commit`.

    Use as a context manager: leaving the block with an exception deletes every temporary
    file and leaves the destinations untouched.

    Parameters
    ----------
    strict : bool, default=True
        Refuse (:class:`~skgradnorm.exceptions.OutputFolderError`) a destination that is a
        symbolic link or not a regular file, as output folders do. With ``strict=False``
        (the caches) a link in the way is replaced like any file (``os.replace`` swaps the
        directory entry, never writing through the link) and a folder in the way fails with
        the ``OSError`` of :func:`os.replace`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedFiles() as staged:
    ...     path = staged.add(folder / "a.txt", b"hello")
    ...     done = staged.commit()
    >>> (folder / "a.txt").read_bytes()
    b'hello'
    """

    def __init__(self, *, strict=True):
        self.strict = strict
        self._pending: list[tuple[Path, Path]] = []

    def add(self, path, data) -> Path:
        """Write ``data`` to a new temporary file next to ``path``; return ``path``.

        ``data`` is bytes, or a function called with the open binary file (to stream, e.g.
        ``lambda fh: np.save(fh, array)``).
        """
        path = Path(path)
        if self.strict:
            self._check_destination(path)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as for an ordinary file
        self._pending.append((tmp, path))
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return path

    @staticmethod
    def _check_destination(path: Path) -> None:
        refuse_link(path)
        if path.exists() and not path.is_file():
            raise OutputFolderError(
                f"cannot write {str(path)!r}: something that is not a regular file is there; "
                "remove it or choose another output folder."
            )

    def commit(self) -> list[Path]:
        """Rename every temporary file into place; return the destinations."""
        done = []
        while self._pending:
            tmp, path = self._pending[0]
            if self.strict:
                refuse_link(path)
            os.replace(tmp, path)
            self._pending.pop(0)
            done.append(path)
        for folder in {path.parent for path in done}:
            _fsync_dir(folder)
        return done

    def discard(self) -> None:
        """Delete the temporary files not renamed yet."""
        for tmp, _ in self._pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.discard()
        return False


def atomic_write(path, write) -> None:
    """Write ``path`` by ``write(fh)`` into a temporary file beside it, fsync, rename.

    The one-file case of :class:`StagedFiles` with ``strict=False``, for the caches (the
    folder is created if needed). Raises ``OSError`` (read-only folder, full disk, a folder
    in the way, ...) after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with StagedFiles(strict=False) as staged:
        staged.add(path, write)
        staged.commit()


def atomic_write_json(path, obj) -> None:
    data = json.dumps(obj, indent=1, sort_keys=True).encode("ascii")  # \u escapes: any str
    atomic_write(path, data)


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


def remove_orphan_temps(directory, *, older_than_s: float = ORPHAN_TEMP_AGE_S) -> list[Path]:
    """Delete the temporary files (``*.skgradnorm-tmp``) in ``directory`` left by a kill.

    Only regular files not modified for ``older_than_s`` seconds are removed, so that the
    temporary files of a run still writing are left alone. Returns the removed paths;
    errors (a vanished file, a read-only folder) are ignored.
    """
    removed = []
    now = time.time()
    folder = Path(directory)
    try:
        if folder.is_symlink() or not folder.is_dir():
            return removed
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.endswith(TMP_SUFFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed
