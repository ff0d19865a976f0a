"""Build the bundled WordNet noun banks under ``skgradnorm/data/``.

The noun bank is the method's "wild" vocabulary (GradNorm, arXiv:2510.16335, which reuses
TAC's, arXiv:2310.11989). Two variants are built from WordNet 3.0 as Debian's
``wordnet-base`` installs it (``/usr/share/wordnet/``):

``paper`` -> ``skgradnorm/data/wordnet_nouns_paper.csv.gz``
    One row per (lemma, noun synset) pair, in the order of ``data.noun`` and, inside a
    synset, in WordNet's lemma order: 146,347 rows. Each lemma is kept exactly as WordNet
    writes it (``physical_entity``, ``French_leave``, ``Sept._11``); a word with several
    senses appears once per sense (``head`` 33 times). The second column is the synset's
    definition: its gloss with every double-quoted example removed, then trimmed of
    spaces and of leading or trailing ``;`` (the semantics of NLTK's
    ``Synset.definition()``). The CSV has the header ``word,definition``, minimal quoting
    and ``\\n`` line ends; decompressed, it is byte for byte TAC's ``data/WordNetNouns.csv``
    (12,294,872 bytes, SHA-256 ``deff9dec...8e5d``), which the script checks. The gzip
    stream is written with no file name and a zero time stamp, so reruns give the same
    bytes.

``unique`` -> ``skgradnorm/data/wordnet_nouns.txt`` (unchanged since it was first built)
    The 117,798 lemmas of ``index.noun``, underscores turned into spaces (``hot dog``),
    sorted by code point, one per line. Beside it,
    ``skgradnorm/data/wordnet_nouns_unique_sense1.txt.gz`` gives, per line, the row of the
    paper table whose synset is that lemma's first sense in ``index.noun`` (WordNet's most
    frequent sense): the definitions of the unique variant are read through it.

``common`` -> ``skgradnorm/data/wordnet_nouns_tagged.txt.gz``
    The 11,846 lemmas of ``index.noun`` (as written there: lower case, underscores) whose
    ``tagsense_cnt`` is not zero: the nouns that occur in WordNet's sense-tagged corpora
    (SemCor), WordNet's own measure of which nouns are in common use. The ``common`` bank
    is the paper bank's rows whose lemma, lower-cased, is one of them: 26,685 rows, 12,289
    distinct strings, about a tenth of the embedding cost.

``skgradnorm/data/WORDNET_LICENSE.txt`` carries WordNet's licence notice, which must
accompany every copy of the database (from ``/usr/share/doc/wordnet-base/copyright``).

Usage (from the repository root)::

    apt-get install -y wordnet-base
    python scripts/build_wordnet_vocabulary.py

File formats: ``index.noun`` and ``data.noun`` start with a licence header whose lines
begin with two spaces. An ``index.noun`` line is ``lemma pos synset_cnt p_cnt
[ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``: its last ``synset_cnt`` fields
are the lemma's synsets, most frequent sense first. A ``data.noun`` line is ``offset
lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt ... | gloss``, ``w_cnt``
being hexadecimal.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDNET_DIR = Path("/usr/share/wordnet")
DEFAULT_COPYRIGHT = Path("/usr/share/doc/wordnet-base/copyright")
DATA = REPO / "skgradnorm" / "data"
DEFAULT_OUT = DATA / "wordnet_nouns.txt"
DEFAULT_PAPER_OUT = DATA / "wordnet_nouns_paper.csv.gz"
DEFAULT_SENSE1_OUT = DATA / "wordnet_nouns_unique_sense1.txt.gz"
DEFAULT_TAGGED_OUT = DATA / "wordnet_nouns_tagged.txt.gz"
DEFAULT_LICENSE_OUT = DATA / "WORDNET_LICENSE.txt"
EXPECTED_LEMMAS = 117_798  # WordNet 3.0 noun lemmas (index.noun)
EXPECTED_ROWS = 146_347  # WordNet 3.0 (lemma, noun synset) pairs (data.noun)
#: TAC's data/WordNetNouns.csv (XLearning-SCU/2024-ICML-TAC), which GradNorm's code embeds.
TAC_CSV_SIZE = 12_294_872
TAC_CSV_SHA256 = "deff9dec810a2ff5c8012c61b5e052e7ba5e62476da9acb6ce8e68df01fd8e5d"

_QUOTED = re.compile(r'".*?"')  # a double-quoted example inside a gloss (shortest match)
_SYNTACTIC_MARKER = re.compile(r"\([a-z]+\)$")  # "(a)", "(p)", "(ip)": adjectives only


def _is_header(line: str) -> bool:
    return line.startswith("  ") or not line.strip()


def read_noun_lemmas(index_path: Path) -> tuple[list[str], int]:
    """Return (sorted unique lemmas with spaces, number of lemma lines read)."""
    lemmas = set()
    n_lines = 0
    with open(index_path, encoding="utf-8") as fh:
        for line in fh:
            if _is_header(line):
                continue
            n_lines += 1
            lemmas.add(line.split(" ", 1)[0].replace("_", " "))
    return sorted(lemmas), n_lines


def read_first_senses(index_path: Path) -> dict[str, int]:
    """Map each ``index.noun`` lemma (as written there) to the offset of its first sense."""
    first = {}
    with open(index_path, encoding="utf-8") as fh:
        for line in fh:
            if _is_header(line):
                continue
            fields = line.split()
            n_synsets = int(fields[2])
            first[fields[0]] = int(fields[-n_synsets])
    return first


def read_tagged_lemmas(index_path: Path) -> list[str]:
    """The ``index.noun`` lemmas (as written there) with a non-zero ``tagsense_cnt``."""
    tagged = []
    with open(index_path, encoding="utf-8") as fh:
        for line in fh:
            if _is_header(line):
                continue
            fields = line.split()
            n_pointers = int(fields[3])
            if int(fields[5 + n_pointers]) > 0:  # after sense_cnt comes tagsense_cnt
                tagged.append(fields[0])
    return sorted(tagged)


def gloss_definition(gloss: str) -> str:
    """The definition part of a WordNet gloss: quoted examples dropped, trimmed."""
    return _QUOTED.sub("", gloss).strip().strip("; ")


def read_noun_senses(data_path: Path) -> list[tuple[str, str, int]]:
    """(word, definition, synset offset) per (lemma, synset) pair, in ``data.noun`` order."""
    rows = []
    with open(data_path, encoding="utf-8") as fh:
        for line in fh:
            if _is_header(line):
                continue
            fields, gloss = line.strip().split("|", 1)
            tokens = fields.split()
            offset, n_words = int(tokens[0]), int(tokens[3], 16)
            definition = gloss_definition(gloss)
            for i in range(n_words):
                word = _SYNTACTIC_MARKER.sub("", tokens[4 + 2 * i])
                rows.append((word, definition, offset))
    return rows


def paper_csv_bytes(rows) -> bytes:
    """The ``word,definition`` CSV (minimal quoting, ``\\n`` line ends), UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["word", "definition"])
    writer.writerows((word, definition) for word, definition, _ in rows)
    return buffer.getvalue().encode("utf-8")


def deterministic_gzip(data: bytes) -> bytes:
    """gzip ``data`` with no file name and a zero time stamp (same input, same bytes)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=out, mtime=0) as fh:
        fh.write(data)
    return out.getvalue()


def first_sense_rows(lemmas, first_sense, rows) -> list[int]:
    """Per unique (spaced) lemma, the first paper row of its first-sense synset."""
    row_of_offset = {}
    for i, (_, _, offset) in enumerate(rows):
        row_of_offset.setdefault(offset, i)
    by_spaced = {lemma.replace("_", " "): off for lemma, off in first_sense.items()}
    return [row_of_offset[by_spaced[lemma]] for lemma in lemmas]


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


def _note(message):
    print(f"note: {message}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR)
    parser.add_argument("--copyright", type=Path, default=DEFAULT_COPYRIGHT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--paper-out", type=Path, default=DEFAULT_PAPER_OUT)
    parser.add_argument("--sense1-out", type=Path, default=DEFAULT_SENSE1_OUT)
    parser.add_argument("--tagged-out", type=Path, default=DEFAULT_TAGGED_OUT)
    parser.add_argument("--license-out", type=Path, default=DEFAULT_LICENSE_OUT)
    args = parser.parse_args(argv)

    index_path = args.wordnet_dir / "index.noun"
    data_path = args.wordnet_dir / "data.noun"
    for path in (index_path, data_path):
        if not path.is_file():
            raise SystemExit(f"{path} not found; install it with: apt-get install -y wordnet-base")

    lemmas, n_lines = read_noun_lemmas(index_path)
    if len(lemmas) != n_lines:
        _note(f"{n_lines - len(lemmas)} lemma lines merged as duplicates")
    if len(lemmas) != EXPECTED_LEMMAS:
        _note(f"{len(lemmas)} unique lemmas, not WordNet 3.0's {EXPECTED_LEMMAS}")
    rows = read_noun_senses(data_path)
    if len(rows) != EXPECTED_ROWS:
        _note(f"{len(rows)} (lemma, synset) rows, not WordNet 3.0's {EXPECTED_ROWS}")
    csv_bytes = paper_csv_bytes(rows)
    digest = hashlib.sha256(csv_bytes).hexdigest()
    if digest != TAC_CSV_SHA256:
        _note(
            f"the paper CSV ({len(csv_bytes)} bytes, SHA-256 {digest}) differs from TAC's "
            f"WordNetNouns.csv ({TAC_CSV_SIZE} bytes, SHA-256 {TAC_CSV_SHA256})"
        )
    sense1 = first_sense_rows(lemmas, read_first_senses(index_path), rows)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lemmas) + "\n", encoding="utf-8", newline="\n")
    args.paper_out.write_bytes(deterministic_gzip(csv_bytes))
    args.sense1_out.write_bytes(deterministic_gzip(("\n".join(map(str, sense1)) + "\n").encode()))
    tagged = read_tagged_lemmas(index_path)
    args.tagged_out.write_bytes(deterministic_gzip(("\n".join(tagged) + "\n").encode()))
    license_text = (
        "The noun banks in this folder are derived from WordNet 3.0:\n"
        "- wordnet_nouns.txt: the noun lemmas of index.noun, underscores replaced by spaces;\n"
        "- wordnet_nouns_paper.csv.gz: one row per (noun lemma, synset) of data.noun, with\n"
        "  the synset's definition (its gloss without the quoted examples);\n"
        "- wordnet_nouns_unique_sense1.txt.gz: the first sense of each lemma of\n"
        "  wordnet_nouns.txt, as a row number of wordnet_nouns_paper.csv.gz;\n"
        "- wordnet_nouns_tagged.txt.gz: the noun lemmas of index.noun whose tagsense_cnt\n"
        "  is not zero.\n"
        "WordNet's licence:\n\n" + extract_wordnet_license(args.copyright)
    )
    args.license_out.write_text(license_text, encoding="utf-8", newline="\n")
    same = "identical to" if digest == TAC_CSV_SHA256 else "DIFFERENT from"
    print(
        f"wrote {len(lemmas)} unique nouns to {args.out}, {len(rows)} paper rows to "
        f"{args.paper_out} ({same} TAC's WordNetNouns.csv), first senses to "
        f"{args.sense1_out}, {len(tagged)} sense-tagged lemmas to {args.tagged_out}, the "
        f"licence to {args.license_out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
