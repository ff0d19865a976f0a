"""Build the bundled WordNet noun bank ``skgradnorm/data/wordnet_nouns.txt``.

The noun bank is the "wild" vocabulary of the method (PAPER.md): every noun lemma of
WordNet 3.0. This script reads WordNet's ``index.noun`` (Debian package ``wordnet-base``,
installed at ``/usr/share/wordnet/index.noun``) and writes

* ``skgradnorm/data/wordnet_nouns.txt``: the unique noun lemmas, underscores turned into
  spaces (``hot_dog`` -> ``hot dog``), sorted by code point, one per line, UTF-8;
* ``skgradnorm/data/WORDNET_LICENSE.txt``: WordNet's licence notice, which must accompany
  every copy of the database (taken from ``/usr/share/doc/wordnet-base/copyright``).

Usage (from the repository root)::

    apt-get install -y wordnet-base
    python scripts/build_wordnet_vocabulary.py

``index.noun`` starts with a licence header whose lines begin with two spaces; every other
line is ``lemma pos synset_cnt ...`` and its first field is the lemma. WordNet 3.0 lists
117,798 noun lemmas. They are already lower case and unique in ``index.noun``, and no two
of them differ only by ``_`` versus a space, so the output has exactly 117,798 lines; the
script checks that nothing was merged and says so if the count ever differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INDEX = Path("/usr/share/wordnet/index.noun")
DEFAULT_COPYRIGHT = Path("/usr/share/doc/wordnet-base/copyright")
DEFAULT_OUT = REPO / "skgradnorm" / "data" / "wordnet_nouns.txt"
DEFAULT_LICENSE_OUT = REPO / "skgradnorm" / "data" / "WORDNET_LICENSE.txt"
EXPECTED_LEMMAS = 117_798  # WordNet 3.0 noun lemmas


def read_noun_lemmas(index_path: Path) -> tuple[list[str], int]:
    """Return (sorted unique lemmas with spaces, number of lemma lines read)."""
    lemmas = set()
    n_lines = 0
    with open(index_path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  ") or not line.strip():
                continue  # licence header (two leading spaces) or blank line
            n_lines += 1
            lemmas.add(line.split(" ", 1)[0].replace("_", " "))
    return sorted(lemmas), n_lines


def extract_wordnet_license(copyright_path: Path) -> str:
    """The ``License: WordNet3.0`` paragraph of a Debian copyright file, as plain text."""
    out = []
    inside = False
    with open(copyright_path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("License: WordNet"):
                inside = True
                continue
            if inside:
                if not line.startswith(" "):
                    break  # end of the indented licence paragraph
                text = line[1:]
                out.append("" if text == "." else text)
    if not out:
        raise SystemExit(f"no 'License: WordNet...' paragraph found in {copyright_path}")
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--copyright", type=Path, default=DEFAULT_COPYRIGHT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--license-out", type=Path, default=DEFAULT_LICENSE_OUT)
    args = parser.parse_args(argv)

    if not args.index.is_file():
        raise SystemExit(
            f"{args.index} not found; install it with: apt-get install -y wordnet-base"
        )
    lemmas, n_lines = read_noun_lemmas(args.index)
    if len(lemmas) != n_lines:
        print(f"note: {n_lines - len(lemmas)} lemma lines merged as duplicates", file=sys.stderr)
    if len(lemmas) != EXPECTED_LEMMAS:
        print(
            f"note: {len(lemmas)} unique lemmas, not the {EXPECTED_LEMMAS} of WordNet 3.0; "
            "is this another WordNet version?",
            file=sys.stderr,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lemmas) + "\n", encoding="utf-8", newline="\n")
    license_text = (
        "The noun list wordnet_nouns.txt in this folder is derived from WordNet 3.0\n"
        "(index.noun: noun lemmas, underscores replaced by spaces). WordNet's licence:\n\n"
        + extract_wordnet_license(args.copyright)
    )
    args.license_out.write_text(license_text, encoding="utf-8", newline="\n")
    print(f"wrote {len(lemmas)} nouns to {args.out} and the licence to {args.license_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
