"""Tests of the bundled WordNet noun bank."""

from __future__ import annotations

from importlib import resources

from skgradnorm.vocabulary import wordnet_nouns

# WordNet 3.0's index.noun has 117,798 lemmas; they stay unique after "_" -> " ".
EXPECTED_SIZE = 117_798


def test_wordnet_nouns_content():
    nouns = wordnet_nouns()
    assert len(nouns) == EXPECTED_SIZE
    assert len(set(nouns)) == len(nouns)
    assert nouns == sorted(nouns)
    assert not any("_" in n for n in nouns)
    assert all(n and n == n.strip() and "\n" not in n for n in nouns)
    for noun in ("dog", "cat", "hot dog", "airplane", "truck"):
        assert noun in nouns


def test_wordnet_nouns_returns_a_fresh_list():
    first = wordnet_nouns()
    first.clear()
    assert len(wordnet_nouns()) == EXPECTED_SIZE
    assert wordnet_nouns() is not wordnet_nouns()


def test_wordnet_licence_is_shipped():
    text = resources.files("skgradnorm").joinpath("data", "WORDNET_LICENSE.txt").read_text("utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    assert "Permission to use, copy, modify and distribute" in text
