"""The ``skgradnorm`` command line (``python -m skgradnorm``).

- ``skgradnorm cluster IMAGE_DIR --n-clusters K --out OUT_DIR``: cluster a folder of images
  with CLIP and GradNorm and write the assignments, the selected nouns, a JSON summary and
  a self-contained HTML report (see :mod:`skgradnorm._reporting`).
- ``skgradnorm embed IMAGE_DIR --out EMB_DIR``: images to a resumable embeddings folder
  (on a Dask cluster with ``--scheduler``).
- ``skgradnorm demo``: the method on a synthetic planted world (no weights, CPU, seconds),
  with the same report.

This module dispatches; ``_parser.py`` parses (its defaults read from the estimators'
source by ``_defaults.py``, without importing torch), ``_inputs.py`` reads and checks the
inputs, ``_commands.py`` runs ``cluster`` and ``embed`` and ``_demo.py`` the demo.

Errors the user can fix (no images, unreadable images, K too large, weights that cannot be
loaded, an output folder that already holds results, ...) end with exit status 2 and an
``error:`` message on stderr, without a traceback.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

from ._commands import cluster, embed
from ._inputs import CLIError
from ._parser import build_parser

__all__ = ["main"]


def _run(args) -> int:
    if args.command == "cluster":
        return cluster(args)
    if args.command == "embed":
        return embed(args)
    from ._demo import demo

    return demo(args)


@contextlib.contextmanager
def _one_line_warnings(command):
    """Show warnings as ``skgradnorm CMD: warning: ...`` on one line, for this run only.

    Python's default display adds the file, the line number and the source line of the
    caller, which mean nothing to a user of the command line. Written with ``tqdm.write``
    so that a progress bar on the screen is redrawn below the line, not broken by it. The
    Python API is untouched: there the warnings stay warnings.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm import tqdm

        text = " ".join(str(message).split())
        kind = "warning" if category is UserWarning else f"warning ({category.__name__})"
        tqdm.write(f"skgradnorm {command}: {kind}: {text}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _printable_output():
    """Names that the terminal's encoding cannot show (a non-UTF-8 file name under a strict
    encoding) are printed with escapes instead of failing the run at its last line."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="backslashreplace")
                changed.append(stream)
    try:
        yield
    finally:
        for stream in changed:
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="strict")


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with _printable_output(), _one_line_warnings(args.command):
        try:
            return _run(args)
        except CLIError as exc:
            print(f"skgradnorm {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"skgradnorm {args.command}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
