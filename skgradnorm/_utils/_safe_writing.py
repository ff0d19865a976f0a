"""Writing output files safely: whole or not at all, never through a link, any file name.

- :class:`StagedFiles` writes each file to a temporary name in its own folder and renames
  them all into place (:func:`os.replace`) only once every one is complete, so a crash or a
  kill never leaves a truncated ``assignments.csv`` behind (the old results stay whole);
- :func:`refuse_link` refuses a planted symbolic link where an output file goes; the
  temporary files are created with ``O_EXCL | O_NOFOLLOW`` and ``os.replace`` swaps the
  directory entry, so nothing is ever written through a link;
- :func:`csv_bytes` and :func:`json_bytes` encode any file name the OS can give: on POSIX a
  name that is not valid UTF-8 reaches Python with surrogate escapes (PEP 383); CSV files
  get its original bytes back (``errors="surrogateescape"``), JSON files (UTF-8 by RFC 8259)
  get ``\\udcXX`` escapes that :func:`json.loads` turns back into the same string;
- :func:`spreadsheet_safe` neutralises CSV cells that a spreadsheet would run as a formula
  (a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a ``'`` in front), as
  the OWASP "CSV injection" advice and spreadsheet-safe CSV writers do;
- :func:`display_text` turns such a name into valid text for HTML (undecodable bytes shown
  as ``\\xNN``).

The standard library has no atomic multi-file writer; this one is small (a temporary name,
``fsync``, ``os.replace``) and its edge cases (links, leftovers of a kill) are ours.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from pathlib import Path

from ..exceptions import OutputFolderError

__all__ = [
    "TMP_SUFFIX",
    "StagedFiles",
    "csv_bytes",
    "display_text",
    "json_bytes",
    "refuse_link",
    "remove_leftover_temporaries",
    "spreadsheet_safe",
]

#: Suffix of the temporary files (``.<name>.<random>.skgradnorm-tmp``) renamed into place.
TMP_SUFFIX = ".skgradnorm-tmp"

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def refuse_link(path) -> None:
    """Raise :class:`OutputFolderError` if ``path`` is a symbolic link (even a dangling one)."""
    path = Path(path)
    if path.is_symlink():
        raise OutputFolderError(
            f"refusing to write {str(path)!r}: it is a symbolic link (to "
            f"{os.readlink(path)!r}); remove it or choose another output folder."
        )


def remove_leftover_temporaries(folder) -> list[Path]:
    """Delete the regular files named ``*.skgradnorm-tmp`` in ``folder`` (left by a kill)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return removed
    for entry in os.scandir(folder):
        if entry.name.endswith(TMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    return removed


class StagedFiles:
    """Files written to temporary names, renamed into place together by :meth:`commit`.

    Use as a context manager: leaving the block with an exception deletes every temporary
    file and leaves the destinations untouched.

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

    def __init__(self):
        self._pending: list[tuple[Path, Path]] = []

    def add(self, path, data: bytes) -> Path:
        """Write ``data`` to a new temporary file next to ``path``; return ``path``."""
        path = Path(path)
        refuse_link(path)
        if path.exists() and not path.is_file():
            raise OutputFolderError(
                f"cannot write {str(path)!r}: something that is not a regular file is there; "
                "remove it or choose another output folder."
            )
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as for an ordinary file
        self._pending.append((tmp, path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return path

    def commit(self) -> list[Path]:
        """Rename every temporary file into place; return the destinations."""
        done = []
        while self._pending:
            tmp, path = self._pending[0]
            refuse_link(path)
            os.replace(tmp, path)
            self._pending.pop(0)
            done.append(path)
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


def spreadsheet_safe(cell):
    """``cell`` with a ``'`` in front if it starts like a spreadsheet formula.

    Only text cells are changed; numbers are not cells of this kind.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("-x.png"), spreadsheet_safe("a=b")
    ("'=HYPERLINK(1)", "'-x.png", 'a=b')
    """
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")  # POSIX names: their original bytes
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for (Windows names)
        return text.encode("utf-8", "backslashreplace")


def csv_bytes(header, rows, *, text_columns=()) -> bytes:
    """A CSV document (``\\n`` line ends); cells of ``text_columns`` made spreadsheet-safe."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # With "\n" line ends the csv module quotes a cell holding "\n" but not one holding a
    # bare "\r", which readers take for a line end: such rows are written fully quoted.
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    text_columns = set(text_columns)
    for row in rows:
        cells = [spreadsheet_safe(v) if j in text_columns else v for j, v in enumerate(row)]
        has_cr = any(isinstance(v, str) and "\r" in v for v in cells)
        (quoted if has_cr else writer).writerow(cells)
    return _encode(buf.getvalue())


def json_bytes(document) -> bytes:
    """Indented JSON in UTF-8; a string holding surrogate escapes round-trips through JSON.

    Non-ASCII text is kept readable; a lone surrogate cannot be UTF-8, and appears only
    inside JSON strings, where ``backslashreplace`` writes it as the JSON escape
    ``\\udcXX``, which :func:`json.loads` reads back as the same character.
    """
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "backslashreplace")


def display_text(text: str) -> str:
    """``text`` as valid Unicode: bytes that are not UTF-8 shown as ``\\xNN``.

    Examples
    --------
    >>> import os
    >>> display_text(os.fsdecode(b"caf\\xe9.png")) if os.name == "posix" else "caf\\\\xe9.png"
    'caf\\\\xe9.png'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _encode(text).decode("utf-8", "backslashreplace")
