"""The spliced noun-prompt tokenizer (skgradnorm._clip._tokenizer) against open_clip's own.

Every check compares ids with ``open_clip.tokenizer.SimpleTokenizer`` on the same prompts:
a spread sample of the paper's bank, awkward nouns, random ASCII nouns (many boundary
cases) and custom templates. The whole bank is checked by benchmarks/bench_tokenizer.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _clip_fixtures import make_tiny_encoder, open_clip_module

from skgradnorm._clip._tokenizer import NounPromptTokenizer, tokenize_prompts
from skgradnorm.vocabulary import PAPER_TEMPLATES, wordnet_nouns

AWKWARD_NOUNS = [
    # punctuation at either end, "." and "'s" (the bank has all of these)
    "Mr.",
    "U.S.A.",
    "Washington_D.C.",
    ".22",
    "'hood",
    "'s_Gravenhage",
    "rock'n'roll",
    "dog's",
    "dogs'",
    "don't",
    "o'clock",
    "s'more",
    "(parenthesised)",
    "!!!",
    "...",
    "-",
    "_",
    "__init__",
    "C++",
    "C#",
    "50%",
    "e-mail",
    "mother-in-law",
    "AC/DC",
    "{}",
    "{0}",
    "%s",
    "a.b.c",
    "'",
    "''",
    "'s",
    "'ll",
    # digits
    "3-D",
    "a1b2",
    "100",
    "1st",
    "2001:_a_space_odyssey",
    # case, accents, non-ASCII, ftfy's fixes
    "ÉCOLE",
    "café",
    "naïve",
    "São_Paulo",
    "Ångström",
    "İstanbul",
    "straße",
    "ﬁsh",
    "ＦＵＬＬ width",
    "“quoted”",
    "e\u0301",
    "Ã©",
    "\u200bzero width",
    "\u00a0nbsp\u00a0",
    # emoji, CJK, Hangul, a lone surrogate
    "🐶",
    "emoji 🐶 dog",
    "👍🏽",
    "东京",
    "日本語の名詞",
    "한국어",
    "\ud83d",
    # HTML entities, special tokens
    "&amp;",
    "AT&T",
    "&lt;b&gt;",
    "fish &amp chips",
    "&amp;amp;",
    "<start_of_text>",
    "<end_of_text>dog",
    "<b>bold</b>",
    "a > b",
    # whitespace
    "a  b",
    "  lead",
    "trail  ",
    "\ttab",
    "tab\t",
    "new\nline",
    "\r\n",
    "",
    " ",
    "\x00",
    "\x7f",
    # too long: truncated at the context length
    "x" * 300,
    "word " * 100,
    "a." * 60,
    "Mr." * 40,
]

CUSTOM_TEMPLATES = [
    "{}",
    "{}.",
    ".{}",
    "'{}'",
    "({})",
    "{}'s photo",
    "a photo of a{}",
    "{}s are great",
    "the {}!",
    "“{}”",
    "«{}»",
    "&{}",
    "<{}>",
    "{{literal}} {}",
    "{0} once",
    "l'{}",
    "une photo d'un {}.",
    "été {}",
    "a   {}   b",
    "\t{}\n",
    "{}" + " filler" * 80,
    "3{}4",
    "a-{}-b",
]


@pytest.fixture(scope="module")
def open_clip():
    return open_clip_module()


@pytest.fixture(scope="module")
def tokenizer(open_clip):
    return open_clip.tokenizer.SimpleTokenizer()


def _reference(tokenizer, nouns, templates):
    return tokenizer([t.format(n) for n in nouns for t in templates])


def _check(tokenizer, nouns, templates):
    fast = NounPromptTokenizer.for_tokenizer(tokenizer)
    assert fast is not None
    got = fast(nouns, templates)
    want = _reference(tokenizer, nouns, templates)
    assert got.dtype == want.dtype == torch.long and got.shape == want.shape
    bad = (got != want).any(dim=1).nonzero().flatten().tolist()
    prompts = [t.format(n) for n in nouns for t in templates]
    assert not bad, [prompts[i] for i in bad[:5]]
    return fast


def test_bank_sample_matches_open_clip(tokenizer):
    distinct = list(dict.fromkeys(wordnet_nouns("paper")))
    # 1,500 nouns spread over the bank, plus every noun that starts or ends with punctuation.
    spread = [distinct[i] for i in np.linspace(0, len(distinct) - 1, 1500).astype(int)]
    edges = [n for n in distinct if not (n[0].isalnum() and n[-1].isalnum())]
    nouns = list(dict.fromkeys(spread + edges))
    fast = _check(tokenizer, nouns, PAPER_TEMPLATES)
    # Only the nouns ending in punctuation ("Mr.", "April_Fools'") go to open_clip, and
    # only with the six templates where a "." follows them.
    ends_in_punct = sum(not n[-1].isalnum() for n in nouns)
    assert ends_in_punct > 50
    assert fast.last_fallback_rows == 6 * ends_in_punct


def test_awkward_nouns_and_templates_match_open_clip(tokenizer):
    _check(tokenizer, AWKWARD_NOUNS, list(PAPER_TEMPLATES) + CUSTOM_TEMPLATES)


def test_random_ascii_nouns_match_open_clip(tokenizer):
    # Mostly punctuation, apostrophes, letters, digits and spaces: many boundary cases.
    rng = np.random.default_rng(0)
    alphabet = list("ab sS'.-_!?(){}&<>0123456789 'tdl.") + ["'s", "'ll", "&amp;"]
    nouns = ["".join(rng.choice(alphabet, size=rng.integers(0, 8))) for _ in range(400)]
    nouns += [chr(c) for c in range(0x20, 0x7F)]
    templates = ["{}", "a {}.", "x{}y", ".{}.", "'{}'", "{}'s", "1{}2", "({})", "a photo of the {}"]
    _check(tokenizer, nouns, templates)


def test_splicing_is_used_where_the_boundary_is_safe(tokenizer):
    fast = NounPromptTokenizer.for_tokenizer(tokenizer)
    fast(["dog", "hot_dog", "'hood", ".22", "3-D", "a  b"], PAPER_TEMPLATES)
    assert fast.last_fallback_rows == 0
    cases = {
        ("Mr.", "itap of a {}."): 1,  # ".."
        ("Mr.", "a {} in a video game."): 0,
        ("stone", "'{}'"): 1,  # "'s" would be a contraction
        ("dog", "a photo of a{}"): 1,  # letters join
        ("dog", "{}s"): 1,
        ("dog", "3{}4"): 0,  # digits are single chunks
        ("café", "a {}."): 1,  # non-ASCII: open_clip's own cleaning
        ("AT&T", "a {}."): 1,  # '&': HTML unescaping
        ("dog", "été {}"): 1,  # non-ASCII template
        ("", "a {}."): 1,  # the prefix meets the suffix
    }
    for (noun, template), expected in cases.items():
        got = fast([noun], [template])
        assert fast.last_fallback_rows == expected, (noun, template)
        assert torch.equal(got, tokenizer([template.format(noun)]))


def test_other_context_lengths_truncate_like_open_clip(open_clip):
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=12)
    _check(tok, ["dog", "word " * 9, "word " * 10, "word " * 11, "x" * 80], PAPER_TEMPLATES)


def test_unsupported_tokenizers_get_no_fast_path(open_clip, monkeypatch):
    SimpleTokenizer = open_clip.tokenizer.SimpleTokenizer

    class Subclass(SimpleTokenizer):
        pass

    for tok in (
        SimpleTokenizer(clean="canonicalize"),
        SimpleTokenizer(clean="whitespace"),
        SimpleTokenizer(reduction_mask="simple"),
        SimpleTokenizer(additional_special_tokens=["<mask>"]),
        Subclass(),
        lambda texts: None,
    ):
        assert NounPromptTokenizer.for_tokenizer(tok) is None
        assert tokenize_prompts(tok, ["dog"], ["a {}."]) is None
    # A tokenizer that disagrees with the splicing on the self-check is not used either.
    real_call = NounPromptTokenizer.__call__

    def off_by_one(self, nouns, templates):
        return real_call(self, nouns, templates) + 1

    monkeypatch.setattr(NounPromptTokenizer, "__call__", off_by_one)
    assert NounPromptTokenizer.for_tokenizer(SimpleTokenizer()) is None


def test_encode_nouns_unchanged_by_the_fast_tokenizer(monkeypatch, reference_model):
    import skgradnorm._clip._nouns as encoder_module

    nouns = ["dog", "hot_dog", "Mr.", "'hood", "U.S.A.", "café", "word " * 30]
    templates = list(PAPER_TEMPLATES) + ["'{}'", "{}"]
    used = []

    def spy(tok, ns, ts):
        tokens = tokenize_prompts(tok, ns, ts)
        used.append(tokens is not None)
        return tokens

    enc = make_tiny_encoder(templates=templates)  # cache off: each call computes
    monkeypatch.setattr(encoder_module, "tokenize_prompts", spy)
    fast = enc.encode_nouns(nouns)
    assert used and all(used)
    monkeypatch.setattr(encoder_module, "tokenize_prompts", lambda *args: None)
    plain = enc.encode_nouns(nouns)
    np.testing.assert_array_equal(fast, plain)
    # And both are open_clip's encode_text of open_clip's tokens, averaged per noun.
    model, _, tokenizer = reference_model
    with torch.inference_mode():
        raw = model.encode_text(_reference(tokenizer, nouns, templates))
    mean = raw.reshape(len(nouns), len(templates), -1).mean(1)
    expected = torch.nn.functional.normalize(mean, dim=-1).numpy()
    np.testing.assert_allclose(fast, expected, atol=1e-5)
