"""Tests of the bundled WordNet noun banks (skgradnorm.vocabulary)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections import Counter
from importlib import resources

import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skgradnorm.vocabulary import wordnet_definitions, wordnet_nouns

# WordNet 3.0's index.noun has 117,798 lemmas; they stay unique after "_" -> " ".
EXPECTED_SIZE = 117_798
# WordNet 3.0's data.noun has 146,347 (lemma, synset) pairs over 119,034 distinct strings.
PAPER_SIZE = 146_347
PAPER_DISTINCT = 119_034
# TAC's data/WordNetNouns.csv (XLearning-SCU/2024-ICML-TAC), as published.
TAC_CSV_SIZE = 12_294_872
TAC_CSV_SHA256 = "deff9dec810a2ff5c8012c61b5e052e7ba5e62476da9acb6ce8e68df01fd8e5d"


def _data(name):
    return resources.files("skgradnorm").joinpath("data", name).read_bytes()


def test_wordnet_nouns_content():
    nouns = wordnet_nouns("unique")
    assert len(nouns) == EXPECTED_SIZE
    assert len(set(nouns)) == len(nouns)
    assert nouns == sorted(nouns)
    assert not any("_" in n for n in nouns)
    assert all(n and n == n.strip() and "\n" not in n for n in nouns)
    for noun in ("dog", "cat", "hot dog", "airplane", "truck"):
        assert noun in nouns
    assert wordnet_nouns("unique") == nouns


def test_wordnet_nouns_returns_a_fresh_list():
    for variant in ("unique", "paper"):
        first = wordnet_nouns(variant)
        n = len(first)
        first.clear()
        assert len(wordnet_nouns(variant)) == n
        assert wordnet_nouns(variant) is not wordnet_nouns(variant)
        defs = wordnet_definitions(variant)
        defs.clear()
        assert len(wordnet_definitions(variant)) == n


def test_wordnet_licence_is_shipped():
    text = _data("WORDNET_LICENSE.txt").decode("utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    assert "Permission to use, copy, modify and distribute" in text
    assert "wordnet_nouns_paper.csv.gz" in text


def test_paper_bank_is_tacs_csv_byte_for_byte():
    raw = gzip.decompress(_data("wordnet_nouns_paper.csv.gz"))
    assert len(raw) == TAC_CSV_SIZE
    assert hashlib.sha256(raw).hexdigest() == TAC_CSV_SHA256
    # ... and the API returns exactly its two columns, parsed by a plain csv reader.
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[0] == ["word", "definition"]
    assert wordnet_nouns("paper") == [r[0] for r in rows[1:]]
    assert wordnet_definitions("paper") == [r[1] for r in rows[1:]]


def test_paper_bank_facts():
    nouns = wordnet_nouns("paper")
    assert len(nouns) == PAPER_SIZE
    assert len(set(nouns)) == PAPER_DISTINCT
    assert nouns[:6] == [
        "entity",
        "physical_entity",
        "abstraction",
        "abstract_entity",
        "thing",
        "object",
    ]
    assert nouns[-5:] == ["9/11", "9-11", "September_11", "Sept._11", "Sep_11"]
    counts = Counter(nouns)
    assert counts["head"] == 33
    assert counts["crane"] == 2 and counts["Crane"] == 3  # case kept, as WordNet writes it
    assert counts["hot_dog"] >= 2 and "hot dog" not in counts  # underscores kept
    assert "French_leave" in counts
    assert all(w and w == w.strip() for w in nouns)
    # Every unique lemma is some paper word, lower-cased with "_" -> " ", and vice versa.
    assert {w.lower().replace("_", " ") for w in nouns} == set(wordnet_nouns("unique"))


def test_paper_definitions_are_aligned():
    nouns, defs = wordnet_nouns("paper"), wordnet_definitions("paper")
    assert len(defs) == len(nouns)
    by_word = {}
    for word, definition in zip(nouns, defs, strict=True):
        by_word.setdefault(word, []).append(definition)
    assert by_word["entity"] == [
        "that which is perceived or known or inferred to have its own distinct "
        "existence (living or nonliving)"
    ]
    crane = by_word["crane"]
    assert any("wading bird" in d for d in crane) and any("lifts and moves" in d for d in crane)
    # Lemmas of one synset share its definition: abstraction / abstract_entity.
    assert defs[2] == defs[3] and defs[4] != defs[3]
    assert len(set(by_word["head"])) == 33  # one definition per sense
    # Quoted examples are gone (a few WordNet glosses have an unpaired quote, which stays,
    # as in TAC's file) and no definition ends or starts with a separator.
    assert all(d and d == d.strip().strip(";") and d.count('"') <= 1 for d in defs)
    assert sum('"' in d for d in defs) < 10


def test_unique_definitions_are_first_senses():
    nouns, defs = wordnet_nouns("unique"), wordnet_definitions("unique")
    assert len(defs) == len(nouns)
    paper = set(zip(wordnet_nouns("paper"), wordnet_definitions("paper"), strict=True))
    paper_spaced = {(w.lower().replace("_", " "), d) for w, d in paper}
    # Each unique lemma's definition belongs to one of that lemma's own senses.
    for i in range(0, len(nouns), 997):
        assert (nouns[i], defs[i]) in paper_spaced
    assert "dog" in nouns
    assert defs[nouns.index("dog")].startswith("a member of the genus Canis")


@pytest.mark.parametrize("function", [wordnet_nouns, wordnet_definitions])
def test_unknown_variant_is_one_clear_line(function):
    with pytest.raises(InvalidParameterError, match=r"'paper'.*'unique'|'unique'.*'paper'") as e:
        function("papers")
    assert "\n" not in str(e.value)


def test_common_bank_is_the_sense_tagged_rows_of_the_paper_bank():
    paper, common = wordnet_nouns("paper"), wordnet_nouns("common")
    assert len(common) == 26_685 and len(set(common)) == 12_289
    tagged = set(gzip.decompress(_data("wordnet_nouns_tagged.txt.gz")).decode().split())
    assert len(tagged) == 11_846
    assert common == [w for w in paper if w.lower() in tagged]  # same order, verbatim
    assert {"dog", "cat", "airplane", "truck"} <= set(common)
    assert "beagle" not in common and "beagle" in paper  # specialist nouns are dropped
    definitions = wordnet_definitions("common")
    rows = [i for i, w in enumerate(paper) if w.lower() in tagged]
    paper_definitions = wordnet_definitions("paper")  # one call: each returns a new list
    assert definitions == [paper_definitions[i] for i in rows]


def test_cli_vocabulary_choices(tmp_path, monkeypatch):
    from skgradnorm._cli._inputs import CLIError, load_vocabulary

    nouns, definitions = load_vocabulary("common")
    assert nouns == wordnet_nouns("common") and len(definitions) == len(nouns)
    assert load_vocabulary(None)[0] == wordnet_nouns("paper")
    file = tmp_path / "nouns.txt"
    file.write_text("dog\ncat\n\ndog\n")
    assert load_vocabulary(str(file)) == (["dog", "cat"], None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "common").write_text("zebra\n")  # a file of that name wins
    assert load_vocabulary("common") == (["zebra"], None)
    with pytest.raises(CLIError, match="cannot read the vocabulary file"):
        load_vocabulary(str(tmp_path / "missing.txt"))
    with pytest.raises(CLIError, match=r"'comon' is neither a bundled noun bank \(paper, "):
        load_vocabulary("comon")  # a mistyped bank name
