"""The output folder: whether it can take results, before any computation.

:func:`check_output_dir` refuses, in one line, a folder that cannot be created or written,
a planted link where an output goes, or earlier results that would be replaced without
``overwrite``. :data:`OUTPUT_FILES` lists what :func:`~._outputs.write_outputs` writes.
"""

from __future__ import annotations

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


def existing_outputs(out_dir) -> list[str]:
    """Names of the outputs (:data:`OUTPUT_FILES`) already present in ``out_dir``."""
    out_dir = Path(out_dir)
    return [name for name in OUTPUT_FILES if os.path.lexists(out_dir / name)]


def cluster_page_files(out_dir: Path) -> list[Path]:
    pages = out_dir / CLUSTER_PAGES
    if not pages.is_dir() or pages.is_symlink():
        return []
    return sorted(pages.glob("cluster-*.html"))


def check_targets(out_dir: Path) -> None:
    """Refuse links, and non-files where files go, among the outputs in ``out_dir``."""
    for name in OUTPUT_FILES:
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


def check_output_dir(out_dir, *, overwrite, own_source=None) -> None:
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
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} exists and is not a folder; choose another one."
        )
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
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created ({exc.strerror or exc}); "
                "choose another one."
            ) from None
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
    check_targets(out_dir)
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
