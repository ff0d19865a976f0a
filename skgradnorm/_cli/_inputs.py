"""What the command line reads and checks before any compute: images, vocabulary, labels,
embeddings from an earlier run, and the output folder. Errors are :class:`CLIError`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import time
from pathlib import Path


class CLIError(Exception):
    """An error the user can fix: reported as ``error: <message>`` with exit status 2."""


# --------------------------------------------------------------------------- helpers


def read_vocabulary(path) -> list[str]:
    """Nouns from a text file, one per line (blank lines skipped, duplicates dropped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read the vocabulary file {str(path)!r}: {exc}") from None
    nouns = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not nouns:
        raise CLIError(f"the vocabulary file {str(path)!r} holds no nouns (one noun per line).")
    return nouns


#: The bundled noun banks, by the names ``--vocabulary`` accepts (see skgradnorm.vocabulary).
BUNDLED_VOCABULARIES = ("paper", "common", "unique")


def load_vocabulary(choice):
    """``(nouns, definitions or None)`` for ``--vocabulary``: a bundled bank or a file.

    A bundled bank's name wins unless a file of that name exists in the current folder.
    """
    if choice is None:
        choice = "paper"
    if choice in BUNDLED_VOCABULARIES and not Path(choice).is_file():
        from ..vocabulary import wordnet_definitions, wordnet_nouns

        return wordnet_nouns(choice), wordnet_definitions(choice)
    return read_vocabulary(choice), None


def read_labels(labels_csv, image_dir, rel_paths) -> list[str]:
    """The label of each image, from a CSV file of ``path,label`` rows.

    A header row (first cell ``path``) is optional. Paths may be relative to
    ``image_dir``, relative to the current folder, or absolute. Every image must have a
    label; rows for other files are ignored.
    """
    try:
        with open(labels_csv, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read the labels file {str(labels_csv)!r}: {exc}") from None
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    root = Path(image_dir).resolve()
    by_path = {}
    for line, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise CLIError(
                f"{labels_csv}: row {line} {row!r} has no label; each row must be 'path,label'."
            )
        path, label = row[0].strip(), row[1].strip()
        p = Path(path).expanduser()
        candidates = [p.resolve()] if p.is_absolute() else [(root / p).resolve(), p.resolve()]
        for c in candidates:
            by_path[c] = label
    labels, missing = [], []
    for rel in rel_paths:
        label = by_path.get((root / rel).resolve())
        if label is None:
            missing.append(rel)
        labels.append(label)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f", ... ({len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise CLIError(
            f"{len(missing)} of {len(rel_paths)} images have no label in {labels_csv}: {shown}. "
            "Give every image a 'path,label' row (paths relative to IMAGE_DIR or absolute)."
        )
    return labels


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def read_embeddings(path, image_dir, model_key=None):
    """``(U, names, image_root)`` from ``--embeddings``.

    ``path`` is an ``embeddings.npy`` written by an earlier ``cluster`` run (with its
    ``embeddings.json``; its names are relative to IMAGE_DIR) or a ``skgradnorm embed``
    folder. The names are the image paths relative to ``image_root`` (IMAGE_DIR when
    given, else the folder the embeddings were made from), for the report's thumbnails.
    """
    path = Path(path)
    if path.is_file():
        from .._clip._embedding_files import load_embeddings as load_file

        try:
            U, names, _ = load_file(path, model_key=model_key)
        except (ValueError, OSError) as exc:
            raise CLIError(" ".join(str(exc).split())) from None
        if image_dir is None:
            raise CLIError(
                f"--embeddings {str(path)!r} holds paths relative to the image folder of its "
                "run: give that folder as IMAGE_DIR too, for the report's thumbnails."
            )
        missing = [name for name in names if not (Path(image_dir) / name).is_file()]
        if missing:
            raise CLIError(
                f"--embeddings {str(path)!r} lists {len(missing)} image(s) not in IMAGE_DIR "
                f"{str(image_dir)!r} (first: {missing[0]!r}); give the folder of its run."
            )
        return U, list(names), Path(image_dir)
    if not (path / "manifest.json").is_file():
        raise CLIError(
            f"--embeddings {str(path)!r} is neither an embeddings.npy file nor an embeddings "
            "folder (no manifest.json); make one with `skgradnorm cluster` or "
            "`skgradnorm embed IMAGE_DIR --out FOLDER`."
        )
    try:
        from ..distributed import load_embeddings
    except ImportError as exc:
        raise CLIError(
            f"reading an embeddings folder needs dask ({exc}); pip install 'skgradnorm[dask]'."
        ) from None
    import numpy as np

    try:
        U, paths = load_embeddings(path)
        U = np.asarray(U.compute())
    except (OSError, ValueError, RuntimeError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    root = Path(image_dir).resolve() if image_dir is not None else None
    if root is None:
        common = os.path.commonpath(paths) if paths else "."
        root = Path(common if os.path.isdir(common) else os.path.dirname(common))
    names = [os.path.relpath(p, root) for p in paths]
    return U, [Path(n).as_posix() for n in names], root


class Steps:
    """Prints ``[i/n] what`` to stderr (unless quiet) and records each step's duration."""

    def __init__(self, n, quiet):
        self.n, self.quiet, self.i = n, quiet, 0
        self.timings = {}

    @contextlib.contextmanager
    def __call__(self, name, message=None):
        if message is not None:
            self.i += 1
            if not self.quiet:
                print(f"[{self.i}/{self.n}] {message}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - t0


def check_out_dir(out_dir: Path, overwrite: bool, *, own_source=None) -> None:
    """Refuse an unusable output folder before any compute (one line, exit 2).

    See :func:`skgradnorm._reporting._out_dir.check_output_dir`: creatable and writable,
    not inside a file, no links planted where outputs go, and no earlier results unless
    ``overwrite`` (or unless they are ``own_source``'s, for the demo).
    """
    from .._reporting._out_dir import check_output_dir

    try:
        check_output_dir(out_dir, overwrite=overwrite, own_source=own_source)
    except ValueError as exc:  # OutputFolderError
        raise CLIError(" ".join(str(exc).split())) from None
