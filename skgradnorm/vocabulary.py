"""The bundled noun banks: WordNet 3.0 nouns (the method's "wild" vocabulary).

Three variants ship with the package (``scripts/build_wordnet_vocabulary.py`` rebuilds
them from WordNet 3.0), with the prompt templates they are embedded through
(:data:`PAPER_TEMPLATES`):

- ``"paper"``: one entry per (noun lemma, synset) pair of WordNet 3.0, 146,347 of them, in
  the order of WordNet's ``data.noun``, each lemma exactly as WordNet writes it
  (``physical_entity``, ``Sept._11``); polysemous words repeat (``head`` 33 times). It is
  TAC's ``data/WordNetNouns.csv``, which the GradNorm authors' code embeds, byte for byte.
- ``"unique"``: the 117,798 distinct noun lemmas, lower case, underscores turned into
  spaces (``hot dog``), sorted.
- ``"common"``: the rows of ``"paper"`` whose lemma WordNet's sense-tagged corpus counts
  (26,685 entries): a tenth of the cost to embed, for coarse collections only.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from importlib import resources

from sklearn.utils._param_validation import StrOptions, validate_params

__all__ = ["PAPER_TEMPLATES", "wordnet_definitions", "wordnet_nouns"]

#: The seven prompt templates of GradNorm (and TAC) for embedding a noun: each noun is put
#: into every template, the prompts are embedded by the text tower, and the embeddings are
#: averaged, then L2-normalised (:meth:`skgradnorm.CLIPEncoder.encode_nouns`).
PAPER_TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

_UNIQUE_FILE = "wordnet_nouns.txt"
_PAPER_FILE = "wordnet_nouns_paper.csv.gz"
_SENSE1_FILE = "wordnet_nouns_unique_sense1.txt.gz"
_TAGGED_FILE = "wordnet_nouns_tagged.txt.gz"
_VARIANT = [StrOptions({"paper", "unique", "common"})]


def _read_data(name: str) -> bytes:
    data = resources.files("skgradnorm").joinpath("data", name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


@functools.lru_cache(maxsize=1)
def _paper_table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(words, definitions) of the paper bank, read once."""
    reader = csv.reader(io.StringIO(_read_data(_PAPER_FILE).decode("utf-8"), newline=""))
    header = next(reader)
    if header != ["word", "definition"]:  # pragma: no cover - a damaged installation
        raise RuntimeError(f"{_PAPER_FILE}: unexpected header {header}; reinstall skgradnorm.")
    words, definitions = zip(*reader, strict=True)
    return words, definitions


@functools.lru_cache(maxsize=1)
def _common_rows() -> tuple[int, ...]:
    """Rows of the paper bank whose lemma has a sense-tagged occurrence in WordNet."""
    tagged = set(_read_data(_TAGGED_FILE).decode("utf-8").split())
    return tuple(i for i, word in enumerate(_paper_table()[0]) if word.lower() in tagged)


@functools.lru_cache(maxsize=1)
def _unique_nouns() -> tuple[str, ...]:
    return tuple(line for line in _read_data(_UNIQUE_FILE).decode("utf-8").splitlines() if line)


@functools.lru_cache(maxsize=1)
def _unique_definitions() -> tuple[str, ...]:
    _, definitions = _paper_table()
    rows = _read_data(_SENSE1_FILE).split()
    return tuple(definitions[int(row)] for row in rows)


@validate_params({"variant": _VARIANT}, prefer_skip_nested_validation=True)
def wordnet_nouns(variant="paper"):
    """Return a WordNet 3.0 noun bank bundled with skgradnorm.

    The noun bank is the "wild" vocabulary that GradNorm filters. Each call returns a new
    list (the files are read once and kept in memory), so changing it does not change
    later results.

    Parameters
    ----------
    variant : {"paper", "unique", "common"}, default="paper"
        Which bank (the default is the paper's, which the estimators and the command line
        use too):

        - ``"paper"``: the bank of the authors' code, TAC's ``WordNetNouns.csv``: one entry
          per (noun lemma, synset) pair of WordNet 3.0, 146,347 entries in the order of
          WordNet's ``data.noun`` (first ``entity``, ``physical_entity``,
          ``abstraction``), each lemma verbatim as WordNet writes it, which is also the
          string the prompt templates receive (``"a photo of the small hot_dog."``). A
          word with several senses appears once per sense (``head`` 33 times): 119,034
          distinct strings in all.
        - ``"unique"``: the 117,798 distinct noun lemmas of WordNet 3.0's ``index.noun``,
          lower case, underscores turned into spaces (``"hot dog"``), sorted by code
          point.
        - ``"common"``: the rows of ``"paper"`` whose lemma occurs in WordNet's
          sense-tagged corpora (a non-zero ``tagsense_cnt`` in ``index.noun``): 26,685
          entries, 12,289 distinct strings, so about a tenth of the cost of embedding
          ``"paper"``. A cheaper first try on a CPU; it keeps everyday nouns and drops
          rare and specialist ones (many dog breeds, aircraft models), so use the full
          bank for fine-grained collections. Never a default.

    Returns
    -------
    nouns : list of str
        The bank, in its order.

    See Also
    --------
    wordnet_definitions : The definition of each entry, in the same order.

    Notes
    -----
    WordNet 3.0 Copyright 2006 by Princeton University; see
    ``skgradnorm/data/WORDNET_LICENSE.txt`` for its licence. Both banks are rebuilt with
    ``scripts/build_wordnet_vocabulary.py``.

    References
    ----------
    .. [1] B. Peng et al., "On the Provable Importance of Gradients for Language-Assisted
       Image Clustering", ICCV 2025, arXiv:2510.16335.
    .. [2] Y. Li et al., "Image Clustering with External Guidance" (TAC), ICML 2024,
       arXiv:2310.11989.

    Examples
    --------
    >>> from skgradnorm.vocabulary import wordnet_nouns
    >>> paper = wordnet_nouns()
    >>> len(paper), paper[:3], paper.count("head")
    (146347, ['entity', 'physical_entity', 'abstraction'], 33)
    >>> nouns = wordnet_nouns("unique")
    >>> len(nouns), "hot dog" in nouns
    (117798, True)
    """
    if variant == "paper":
        return list(_paper_table()[0])
    if variant == "common":
        words = _paper_table()[0]
        return [words[i] for i in _common_rows()]
    return list(_unique_nouns())


@validate_params({"variant": _VARIANT}, prefer_skip_nested_validation=True)
def wordnet_definitions(variant="paper"):
    """Return the WordNet definition of each entry of :func:`wordnet_nouns`.

    Entry ``i`` defines entry ``i`` of ``wordnet_nouns(variant)``, so a reader can tell
    ``crane`` the bird from ``crane`` the machine.

    Parameters
    ----------
    variant : {"paper", "unique", "common"}, default="paper"
        Which bank (see :func:`wordnet_nouns`). For ``"paper"`` and ``"common"``, each
        entry's definition
        is that of its own synset. For ``"unique"``, where a lemma stands for all its
        senses, it is the definition of the lemma's first sense in WordNet's
        ``index.noun`` (WordNet's most frequent sense).

    Returns
    -------
    definitions : list of str
        One definition per noun, in the order of ``wordnet_nouns(variant)``.

    See Also
    --------
    wordnet_nouns : The nouns these define.

    Notes
    -----
    A definition is the synset's gloss without its double-quoted usage examples, trimmed
    of surrounding spaces and semicolons (what NLTK's ``Synset.definition()`` returns).

    Examples
    --------
    >>> from skgradnorm.vocabulary import wordnet_definitions, wordnet_nouns
    >>> nouns, definitions = wordnet_nouns("paper"), wordnet_definitions("paper")
    >>> nouns[0], definitions[0][:43]
    ('entity', 'that which is perceived or known or inferre')
    """
    if variant == "paper":
        return list(_paper_table()[1])
    if variant == "common":
        definitions = _paper_table()[1]
        return [definitions[i] for i in _common_rows()]
    return list(_unique_definitions())
