"""What the command line reads and checks before any compute: images, vocabulary, labels,
embeddings from an earlier run, and the output folder. Errors are :class:`CLIError`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import time
from pathlib import Path


class CLIError(Exception):
    """An error the user can fix: reported as ``error: <message>`` with exit status 2."""


# --------------------------------------------------------------------------- helpers


def user_path(text, what) -> Path:
    """``text`` (an option's value) as a path, ``~`` expanded; refused in one line when it
    is empty, holds a NUL byte or names an unknown user's home."""
    text = str(text)
    if not text.strip():
        raise CLIError(f"{what} is empty; give a path.")
    if "\0" in text:
        raise CLIError(f"{what} {text!r} contains a NUL byte; give a real path.")
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # ~nosuchuser/...
        raise CLIError(f"{what} {text!r}: {exc}") from None


def read_text_file(path, what) -> str:
    """The UTF-8 text of a regular file (a BOM is dropped), refused in one line otherwise.

    FIFOs, devices (``/dev/zero``) and folders are refused before anything is read
    (:func:`~skgradnorm._utils._safe_files.read_regular_bytes`), so they can neither
    block the run nor fill the memory.
    """
    from .._utils._safe_files import read_regular_bytes

    path = user_path(path, what)
    try:
        data = read_regular_bytes(path)
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"cannot read the {what} {str(path)!r}: it is not UTF-8 text ({exc.reason} at "
            f"byte {exc.start})."
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if getattr(exc, "errno", None) is None:  # NotARegularFileError
            reason = "it is not a regular file (a folder, a FIFO or a device)"
        raise CLIError(f"cannot read the {what} {str(path)!r}: {reason}.") from None


def read_vocabulary(path) -> list[str]:
    """Nouns from a text file, one per line (blank lines skipped, duplicates dropped)."""
    text = read_text_file(path, "vocabulary file")
    nouns = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not nouns:
        raise CLIError(f"the vocabulary file {str(path)!r} holds no nouns (one noun per line).")
    bad = next((n for n in nouns if "\0" in n), None)
    if bad is not None:
        raise CLIError(f"the vocabulary file {str(path)!r} holds a NUL byte in {bad!r}.")
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
    if os.sep not in str(choice) and not os.path.lexists(choice):  # a mistyped bank name?
        raise CLIError(
            f"--vocabulary {str(choice)!r} is neither a bundled noun bank "
            f"({', '.join(BUNDLED_VOCABULARIES)}) nor a file; check the name or the path."
        )
    return read_vocabulary(choice), None


def _real(path) -> str:
    """The real path of ``path`` (links followed; a link loop is left as it is)."""
    return os.path.realpath(path)


def _expand(text: str) -> str:
    try:
        return os.path.expanduser(text)
    except RuntimeError:  # ~nosuchuser: a name like any other, matching no image
        return text


def _label_rows(labels_csv):
    """The ``(line, path, label)`` rows of the labels file (header and blank rows dropped)."""
    text = read_text_file(labels_csv, "labels file")
    try:
        rows = [
            (line, row)
            for line, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if row and any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        raise CLIError(f"cannot read the labels file {str(labels_csv)!r}: {exc}") from None
    if rows and rows[0][1][0].strip().lower() == "path":
        rows = rows[1:]
    out = []
    for line, row in rows:
        if len(row) < 2 or not row[1].strip():  # "a.png" or "a.png,": a class without a name
            raise CLIError(
                f"{labels_csv}: row {line} {row!r} has no label; each row must be 'path,label'."
            )
        path, label = row[0].strip(), row[1].strip()
        if "\0" in path or "\0" in label:
            raise CLIError(f"{labels_csv}: row {line} holds a NUL byte; remove it.")
        out.append((line, path, label))
    return out


def read_labels(labels_csv, image_dir, rel_paths) -> list[str]:
    """The label of each image, from a CSV file of ``path,label`` rows.

    A header row (first cell ``path``) is optional, and so is a byte-order mark. Paths may
    be relative to ``image_dir``, relative to the current folder, or absolute. Every image
    must have exactly one label (rows repeating the same label are fine); rows for other
    files are ignored.
    """
    root = _real(image_dir)
    by_path = {}  # real path -> {label: first line}
    for line, path, label in _label_rows(labels_csv):
        p = _expand(path)
        candidates = {_real(p)} if os.path.isabs(p) else {_real(os.path.join(root, p)), _real(p)}
        for c in candidates:
            by_path.setdefault(c, {}).setdefault(label, line)
    labels, missing = [], []
    for rel in rel_paths:
        found = by_path.get(_real(os.path.join(root, rel)), {})
        if len(found) > 1:
            (a, la), (b, lb) = list(found.items())[:2]
            raise CLIError(
                f"{labels_csv}: image {rel!r} has two labels, {a!r} (row {la}) and {b!r} "
                f"(row {lb}); give each image one label."
            )
        label = next(iter(found), None)
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


def read_embeddings(path, image_dir, model_key=None):
    """``(U, names, image_root)`` from ``--embeddings``.

    ``path`` is an ``embeddings.npy`` written by an earlier ``cluster`` run (with its
    ``embeddings.json``; its names are relative to IMAGE_DIR) or a ``skgradnorm embed``
    folder. The names are the image paths relative to ``image_root`` (IMAGE_DIR when
    given, else the folder the embeddings were made from), for the report's thumbnails.
    With ``model_key`` (the encoder's, once loaded) the embeddings must have been made by
    that model: the nouns are embedded by it, and the two must share one space.
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
        U, paths = load_embeddings(path, model_key=model_key)
        if model_key is not None:  # the check of a folder read before the model was loaded
            return None, None, None
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


#: Files ``cluster`` writes into OUT_DIR besides the outputs (checked with them).
EMBEDDING_FILES = ("embeddings.npy", "embeddings.json")


@contextlib.contextmanager
def claim_out_dir(out_dir: Path, overwrite: bool, *, own_source=None, extra_files=()):
    """Check OUT_DIR before any compute and hold it for the run (one line, exit 2).

    See :func:`skgradnorm._reporting._out_dir.check_output_dir`: creatable and writable,
    not inside a file, no links planted where outputs go, and no earlier results unless
    ``overwrite`` (or unless they are ``own_source``'s, for the demo). The folder is then
    locked (:func:`~skgradnorm._reporting._out_dir.output_folder_lock`) and checked again
    under the lock, so that a second run on it is refused instead of interleaving its files
    with this one's or replacing its results.
    """
    from .._reporting._out_dir import check_output_dir, output_folder_lock

    def check():
        check_output_dir(
            out_dir, overwrite=overwrite, own_source=own_source, extra_files=extra_files
        )

    hold = contextlib.ExitStack()
    try:
        check()  # the plain checks first: their messages name what is wrong
        hold.enter_context(output_folder_lock(out_dir))
        check()  # again, now that no other run can change the folder
    except ValueError as exc:  # OutputFolderError
        hold.close()
        raise CLIError(" ".join(str(exc).split())) from None
    with hold:
        yield


def check_cache_dir(cache_dir) -> None:
    """``--cache-dir`` (or the default cache folder): creatable and writable, checked now
    rather than found unusable after the embedding."""
    import secrets

    from .._clip._noun_cache import resolve_cache_dir

    root = resolve_cache_dir(None if cache_dir is None else user_path(cache_dir, "--cache-dir"))
    probe = root / f".probe.{secrets.token_hex(6)}.skgradnorm-tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        option = "--cache-dir" if cache_dir is not None else "the cache folder (--cache-dir)"
        is_file = os.path.lexists(root) and not root.is_dir()
        raise CLIError(
            f"{option} {str(root)!r} cannot be written "
            f"({'it is a file, not a folder' if is_file else exc.strerror or exc}); pass a "
            "writable folder with --cache-dir."
        ) from None


def check_device(device) -> None:
    """``--device``: a torch device that exists here and that the package computes on."""
    if device is None:
        return
    from .._utils._torch import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        reason = str(exc).split(";")[0].replace(f"device={device!r}", "").strip()
        raise CLIError(
            f"--device {device!r}{'' if reason.startswith(':') else ' '}{reason}; use cpu, "
            "cuda, cuda:N or mps, or leave --device out for the best available."
        ) from None


def check_tune_grid(clusterer, grid) -> None:
    """Every ``--tune-grid`` value is a valid setting of ``clusterer``: refused now, in the
    command line's words, rather than after the embedding."""
    from sklearn.base import clone

    from ._parser import TUNABLE

    options = {v: k for k, v in TUNABLE.items()}
    for name, values in grid.items():
        shown = options.get(name, name)
        for value in values:
            trial = clone(clusterer)
            try:
                trial.set_params(**{name: value})
                trial._validate_params()
                trial.selector._validate_params()
            except ValueError as exc:
                reason = str(exc).split(" must be ", 1)
                what = f"must be {reason[1].split('. Got')[0]}" if len(reason) == 2 else str(exc)
                raise CLIError(f"--tune-grid {shown!r}: {value!r} is not valid ({what}).") from None
