"""The output folder: whether it can take results, before any computation, and one run at
a time.

:func:`check_output_dir` refuses, in one line, a folder that cannot be created or written,
a planted link where an output goes, or earlier results that would be replaced without
``overwrite``. :data:`OUTPUT_FILES` lists what :func:`~._outputs.write_outputs` writes.
:func:`output_folder_lock` holds a lock file in the folder for a run, so that two runs on
one folder cannot interleave (the second is refused at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from .._utils._safe_files import TMP_SUFFIX, refuse_link
from ..exceptions import OutputFolderError

__all__ = [
    "CLUSTER_PAGES",
    "OUTPUT_FILES",
    "check_output_dir",
    "cluster_page_files",
    "existing_outputs",
    "make_out_dir",
    "output_folder_lock",
]

#: The folder of the per-cluster pages, inside the output folder.
CLUSTER_PAGES = "clusters"

#: Everything :func:`write_outputs` may write (``metrics.json`` only with known classes).
OUTPUT_FILES = (
    "assignments.csv",
    "selected_nouns.csv",
    "clusters.json",
    "report.html",
    "metrics.json",
    CLUSTER_PAGES,
)


#: The lock file of a run, inside its output folder (see :func:`output_folder_lock`).
LOCK_FILE = ".skgradnorm.lock"


def existing_outputs(out_dir) -> list[str]:
    """Names of the outputs (:data:`OUTPUT_FILES`) already present in ``out_dir``.

    A ``clusters`` folder counts only when it holds a cluster page (or is a link or a
    file): a run killed while writing leaves it empty, and that must not block the rerun.
    """
    out_dir = Path(out_dir)
    present = []
    for name in OUTPUT_FILES:
        path = out_dir / name
        if not os.path.lexists(path):
            continue
        if name == CLUSTER_PAGES and path.is_dir() and not path.is_symlink():
            if not cluster_page_files(out_dir):
                continue
        present.append(name)
    return present


def cluster_page_files(out_dir: Path) -> list[Path]:
    pages = out_dir / CLUSTER_PAGES
    if not pages.is_dir() or pages.is_symlink():
        return []
    return sorted(pages.glob("cluster-*.html"))


def check_targets(out_dir: Path, extra_files=()) -> None:
    """Refuse links, and non-files where files go, among the outputs in ``out_dir`` (and
    the ``extra_files`` a caller writes there too)."""
    for name in (*OUTPUT_FILES, *extra_files):
        path = out_dir / name
        refuse_link(path)
        if name == CLUSTER_PAGES:
            if path.exists() and not path.is_dir():
                raise OutputFolderError(
                    f"cannot write the cluster pages into {str(path)!r}: it is not a folder; "
                    "remove it or choose another output folder."
                )
        elif path.exists() and not path.is_file():
            raise OutputFolderError(
                f"cannot write {str(path)!r}: something that is not a regular file is there; "
                "remove it or choose another output folder."
            )
    for path in cluster_page_files(out_dir):
        refuse_link(path)


def _probe_writable(folder: Path) -> None:
    probe = folder / f".probe.{secrets.token_hex(6)}{TMP_SUFFIX}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputFolderError(
            f"output folder {str(folder)!r} is not writable ({exc.strerror or exc}); "
            "choose another folder."
        ) from None


def make_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and its missing parents, or say in one line why it cannot be.

    The one place the output folder is made: :func:`check_output_dir` (the probe before the
    compute), :func:`output_folder_lock` and the writer of the outputs all call it.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} exists and is not a folder; choose another one."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} cannot be created ({exc.strerror or exc}); "
            "choose another one."
        ) from None


def check_output_dir(out_dir, *, overwrite, own_source=None, extra_files=()) -> None:
    """Check that ``out_dir`` can take the outputs, before any computation.

    The folder must be a folder or creatable (it is created to be sure, and removed
    again with any parent created with it), writable (a probe file is created and
    deleted), and hold no symbolic link (and nothing but a regular file) where an output
    goes. Without ``overwrite`` it must not already hold results, unless they are from
    the same kind of run (``own_source``, the ``source`` entry of its ``clusters.json``).

    Parameters
    ----------
    out_dir : str or path-like
        The output folder.
    overwrite : bool
        Whether results already in ``out_dir`` may be replaced.
    own_source : str or None, default=None
        Results whose ``clusters.json`` has this ``source`` are replaced without
        ``overwrite`` (the demo replaces its own earlier output).
    extra_files : sequence of str, default=()
        Other files the caller writes into ``out_dir`` (the command line's
        ``embeddings.npy``), checked as the outputs are.

    Raises
    ------
    OutputFolderError
        A ``ValueError`` whose one-line message names the path and what to do.

    Examples
    --------
    >>> import tempfile
    >>> check_output_dir(tempfile.mkdtemp() + "/new/out", overwrite=False)
    """
    out_dir = Path(out_dir)
    created = []
    if not out_dir.exists():
        missing = out_dir
        while not os.path.lexists(missing) and missing.parent != missing:
            created.append(missing)
            missing = missing.parent
        if missing.is_symlink() and not missing.exists():
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created: {str(missing)!r} is a "
                "symbolic link to something missing; choose another one."
            )
        if os.path.lexists(missing) and not missing.is_dir():
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created: {str(missing)!r} is a file, "
                "not a folder; choose another one."
            )
    make_out_dir(out_dir)
    try:
        _probe_writable(out_dir)
    finally:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    if created:
        return
    check_targets(out_dir, extra_files)
    pages = out_dir / CLUSTER_PAGES
    if pages.is_dir() and not pages.is_symlink():
        _probe_writable(pages)  # a read-only clusters/ would fail only after the compute
    present = existing_outputs(out_dir)
    if not present or overwrite:
        return
    if own_source is not None:
        try:
            doc = json.loads((out_dir / "clusters.json").read_text(encoding="utf-8"))
            source = doc.get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        if source == own_source:
            return
    raise OutputFolderError(
        f"{str(out_dir)!r} already holds results ({', '.join(present)}); pass overwrite "
        "(--overwrite) to replace them, or choose another output folder."
    )


@contextlib.contextmanager
def output_folder_lock(out_dir):
    """Hold ``out_dir`` for one run: a lock on ``out_dir/.skgradnorm.lock`` until the block ends.

    The folder is created if needed (and removed again at the end if the run left nothing
    in it). The lock is ``fcntl.flock``'s: the operating system drops it when the process
    ends, even killed, so a stale lock file never blocks a later run; a second run on the
    same folder is refused at once with :class:`~skgradnorm.exceptions.OutputFolderError`
    instead of interleaving its files with the first one's. The lock file is removed when
    the block ends; a run that locked a file just being removed sees that the name no
    longer leads to it and tries again. Where ``fcntl`` does not exist (Windows) nothing
    is locked.
    """
    out_dir = Path(out_dir)
    created = []
    missing = out_dir
    while not os.path.lexists(missing) and missing.parent != missing:
        created.append(missing)
        missing = missing.parent
    make_out_dir(out_dir)
    lock = out_dir / LOCK_FILE
    fd = None
    try:
        fd = _acquire(lock, out_dir)
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                lock.unlink()  # before the release: a waiting run then sees a stale name
            os.close(fd)  # releases the lock
        if created:
            for folder in created:  # deepest first; stops at the first that is not empty
                try:
                    folder.rmdir()
                except OSError:
                    break


def _acquire(lock: Path, out_dir: Path, attempts: int = 5):
    """The open, locked descriptor of ``lock`` (None where there is no ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(attempts):
        try:
            fd = os.open(lock, flags, 0o666)
        except OSError as exc:
            raise OutputFolderError(
                f"cannot create the lock file {str(lock)!r} ({exc.strerror or exc}); remove "
                "what is there or choose another output folder."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputFolderError(
                f"another skgradnorm run is writing into {str(out_dir)!r} (it holds "
                f"{LOCK_FILE}); wait for it to finish, or choose another output folder."
            ) from None
        if _same_file(fd, lock):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # locked a file its holder had just removed: take the current one
    raise OutputFolderError(  # pragma: no cover - a folder whose lock keeps changing
        f"cannot lock {str(lock)!r}: other runs keep replacing it; try again."
    )


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
