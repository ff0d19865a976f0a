"""The text of the output files: CSV, JSON, and file names shown in HTML.

- :func:`csv_bytes` and :func:`json_bytes` encode any file name the OS can give: on POSIX a
  name that is not valid UTF-8 reaches Python with surrogate escapes (PEP 383); CSV files
  get its original bytes back (``errors="surrogateescape"``), JSON files (UTF-8 by RFC 8259)
  get ``\\udcXX`` escapes that :func:`json.loads` turns back into the same string;
- :func:`spreadsheet_safe` neutralises CSV cells that a spreadsheet would run as a formula
  (a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a ``'`` in front), as
  the OWASP "CSV injection" advice and spreadsheet-safe CSV writers do;
- :func:`display_text` turns such a name into valid text for HTML (undecodable bytes shown
  as ``\\xNN``).
"""

from __future__ import annotations

import csv
import io
import json

__all__ = ["csv_bytes", "display_text", "json_bytes", "spreadsheet_safe"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
