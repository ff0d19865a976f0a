"""The bundled noun banks side by side: size, embedding cost, and coverage of class names.

Run from the repository root (WordNet's ``data.noun`` from Debian's ``wordnet-base`` adds
the ImageNet rows; without it they are skipped)::

    .venv/bin/python benchmarks/bench_vocabulary.py

Cost is the number of prompts to embed (distinct strings x 7 templates) relative to the
paper's bank: text encoding time is proportional to it. Coverage counts the classes of a
benchmark whose name (CIFAR) or one of whose synset's lemmas (ImageNet, by WordNet id) is
an entry of the bank, case-insensitively. It says which banks can name the classes at
all; it is not an accuracy (that needs real CLIP weights, which this machine cannot load).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from reproduce.cifar import CIFAR100_FINE_NAMES  # noqa: E402
from reproduce.loaders import IMAGENET10_WNIDS, IMAGENET_DOGS_WNIDS  # noqa: E402

from skgradnorm.vocabulary import wordnet_nouns  # noqa: E402

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DATA_NOUN = Path("/usr/share/wordnet/data.noun")


def synset_lemmas(wnids):
    """The lemmas of each WordNet-id synset, read from data.noun (None if absent)."""
    if not DATA_NOUN.is_file():
        return None
    out = []
    with open(DATA_NOUN, "rb") as fh:
        for wnid in wnids:
            fh.seek(int(wnid[1:]))
            tokens = fh.readline().decode("utf-8").split("|")[0].split()
            n = int(tokens[3], 16)
            out.append([tokens[4 + 2 * i].lower() for i in range(n)])
    return out


def main() -> int:
    banks = {v: wordnet_nouns(v) for v in ("paper", "common", "unique")}
    paper_prompts = len(set(banks["paper"])) * 7
    tests = {
        "CIFAR-10": [[n] for n in CIFAR10],
        "CIFAR-100": [[n] for n in CIFAR100_FINE_NAMES],
    }
    for name, wnids in (("ImageNet-10", IMAGENET10_WNIDS), ("ImageNet-Dogs", IMAGENET_DOGS_WNIDS)):
        lemmas = synset_lemmas(wnids)
        if lemmas is not None:
            tests[name] = lemmas
    header = f"{'bank':<8} {'entries':>8} {'distinct':>9} {'cost':>6}  " + "  ".join(
        f"{t:>13}" for t in tests
    )
    print(header)
    for variant, words in banks.items():
        keys = {w.lower().replace(" ", "_") for w in words}
        distinct = len(set(words))
        cells = []
        for classes in tests.values():
            hit = sum(any(c.replace(" ", "_") in keys for c in names) for names in classes)
            cells.append(f"{hit:>6}/{len(classes):<6}")
        cost = distinct * 7 / paper_prompts
        print(f"{variant:<8} {len(words):>8,} {distinct:>9,} {cost:>6.2f}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
