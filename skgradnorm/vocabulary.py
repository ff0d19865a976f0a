"""The bundled noun bank: WordNet 3.0 noun lemmas (the method's "wild" vocabulary)."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["wordnet_nouns"]

_WORDNET_FILE = "wordnet_nouns.txt"


@functools.lru_cache(maxsize=1)
def _wordnet_nouns_tuple() -> tuple[str, ...]:
    text = resources.files("skgradnorm").joinpath("data", _WORDNET_FILE).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def wordnet_nouns() -> list[str]:
    """Return the WordNet 3.0 noun lemmas bundled with skgradnorm.

    The list holds every noun lemma of WordNet 3.0 (117,798 of them), lower case, with
    WordNet's underscores turned into spaces (``"hot dog"``), unique and sorted. It is the
    vocabulary the paper filters with GradNorm. The file is read once and kept in memory;
    each call returns a new list, so changing it does not change later results.

    WordNet 3.0 Copyright 2006 by Princeton University; see
    ``skgradnorm/data/WORDNET_LICENSE.txt`` for its licence. The list is rebuilt with
    ``scripts/build_wordnet_vocabulary.py``.

    Returns
    -------
    nouns : list of str
        The noun lemmas, sorted.

    Examples
    --------
    >>> from skgradnorm.vocabulary import wordnet_nouns
    >>> nouns = wordnet_nouns()
    >>> len(nouns)
    117798
    >>> "dog" in nouns, "hot dog" in nouns
    (True, True)
    """
    return list(_wordnet_nouns_tuple())
