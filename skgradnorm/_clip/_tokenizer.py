"""Fast, exact tokenization of noun prompts: each noun tokenized once, ids spliced.

Why
---
:meth:`CLIPEncoder.encode_nouns` tokenizes ``len(nouns) x len(templates)`` prompts
(833,238 for the paper's bank and seven templates). open_clip's ``SimpleTokenizer`` runs
ftfy, two rounds of HTML unescaping, a regular expression and a Python BPE on every prompt:
a few thousand prompts per second, minutes for the bank, longer than a GPU needs to run
the text tower on them. Here each distinct noun is tokenized once and each template's
text before and after ``{}`` once; a prompt's row is spliced from them:
``[SOT] + prefix_ids + noun_ids + suffix_ids + [EOT]``, truncated as open_clip truncates
(the first ``context_length`` ids, the last one replaced by EOT), zero-padded.

Why splicing is exact
---------------------
open_clip's ``SimpleTokenizer(clean="lower")`` encodes a text in three steps:

1. clean: ``ftfy.fix_text``, ``html.unescape`` twice, collapse whitespace, strip, lower;
2. split: ``regex.findall`` of ``<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|
   [\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`` (case-insensitive) into chunks;
3. BPE: each chunk, alone, becomes one or more ids.

Step 3 is per chunk, so a prompt's ids are the concatenation of its chunks' ids, and
splicing is exact whenever (a) cleaning the prompt equals cleaning its parts, and (b) the
chunks of the prompt are the chunks of the prefix, then of the noun, then of the suffix.
The fast path is used only where both are proved by the following rule; every other
prompt is tokenized by open_clip itself ("the fallback").

* **Safe characters.** The noun and the template use printable ASCII only (space to
  ``~``), without ``&`` and ``<``. On such text (a) holds: ftfy changes nothing (its
  mojibake fixer returns ASCII text unchanged; its other fixers act on HTML entities,
  which need ``&``, on control, non-ASCII, curly-quote, wide and ligature characters, and
  NFC normalisation leaves ASCII alone), ``html.unescape`` changes nothing without ``&``,
  and lowering ASCII acts on each character alone. Whitespace only separates chunks (no
  chunk contains a space), so collapsing and stripping it changes no chunk.
* **Boundaries.** Every alternative of the split pattern looks only forward, and every
  non-space character starts a match, so the split of ``prefix + noun + suffix`` is the
  splits of the parts unless a chunk crosses a boundary. Over safe ASCII a chunk can
  contain the two characters ``a`` ``b`` that meet at a boundary only if both are letters
  (``[\\p{L}]+``), both are punctuation (``[^\\s\\p{L}\\p{N}]+``, e.g. ``"Mr."`` before
  the template's ``"."`` gives ``".."``), ``a`` is an apostrophe and ``b`` a letter (a
  contraction, e.g. a template ``"'{}"`` and the noun ``"stone"`` give ``'s``, ``tone``),
  or they are inside a special token, which needs ``<``. Digits are single chunks. A
  boundary with a space on either side is always safe. Such prompts, and nouns that are
  empty or only spaces (the prefix then meets the suffix), take the fallback.
* **Templates.** A template is spliced only if ``str.format`` puts the noun in verbatim
  at one place (one plain ``{}`` or ``{0}`` field, no conversion, no format spec).

Which tokenizers
----------------
Only an ``open_clip.tokenizer.SimpleTokenizer`` itself (not a subclass) with
``clean="lower"``, no ``reduction_mask``, a context length, and the split pattern above
(no extra special tokens); its own vocabulary, BPE and cache are used, so a custom BPE
file is fine. When it is built, :class:`NounPromptTokenizer` also checks itself against
the tokenizer on a few awkward prompts (truncation included) and is not used if any row
differs: an open_clip release that changes its tokenizer makes this path off, not wrong.
Any other tokenizer (open_clip's ``HFTokenizer`` and ``SigLipTokenizer``, the
``canonicalize`` cleaning of SigLIP models...) gets ``None`` from :func:`tokenize_prompts`
and the caller uses the model's own tokenizer.

``tests/test_tokenizer.py`` checks the ids against open_clip's on a sample of the bank and
on awkward nouns and templates; ``benchmarks/bench_tokenizer.py`` checks the whole bank.
"""

from __future__ import annotations

import itertools
import logging
import string
import weakref

import numpy as np
import torch

from .._utils._compat import import_open_clip

__all__ = ["NounPromptTokenizer", "tokenize_prompts"]

logger = logging.getLogger(__name__)

# The split pattern of open_clip's SimpleTokenizer without extra special tokens (open_clip
# 2.x and 3.x); the fast path's reasoning (module docstring) is about this pattern.
_SPLIT_PATTERN = (
    "<start_of_text>|<end_of_text>"
    r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)

# Character classes of the boundary rule (printable ASCII only).
_SPACE, _LETTER, _DIGIT, _PUNCT, _APOSTROPHE = range(5)
_CLASS = np.full(128, -1, dtype=np.int8)
for _code in range(0x20, 0x7F):
    _ch = chr(_code)
    _CLASS[_code] = (
        _SPACE
        if _ch == " "
        else _LETTER
        if _ch.isalpha()
        else _DIGIT
        if _ch.isdigit()
        else _APOSTROPHE
        if _ch == "'"
        else _PUNCT
    )
_CLASS_OF = {chr(c): int(_CLASS[c]) for c in range(0x20, 0x7F)}

# _JOINS[a, b]: a chunk of the split can hold the character of class a followed by one of
# class b (so a boundary between them is not safe). Index 5 is "no character" (an empty
# prefix or suffix), which joins nothing.
_JOINS = np.zeros((6, 6), dtype=bool)
_JOINS[_LETTER, _LETTER] = True
_JOINS[np.ix_([_PUNCT, _APOSTROPHE], [_PUNCT, _APOSTROPHE])] = True
_JOINS[_APOSTROPHE, _LETTER] = True
_NONE = 5

# open_clip's BPE cache grows without bound; ours (chunk -> ids) is cleared at this size.
_MAX_CACHED_CHUNKS = 1 << 20


def _is_safe_text(text: str) -> bool:
    """Printable ASCII without ``&`` and ``<`` (see the module docstring)."""
    return text.isascii() and text.isprintable() and "&" not in text and "<" not in text


def _split_template(template: str):
    """``(prefix, suffix)`` with ``template.format(x) == prefix + x + suffix``, or None."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    fields = [i for i, (_, name, _, _) in enumerate(parsed) if name is not None]
    if len(fields) != 1:
        return None
    k = fields[0]
    _, name, spec, conversion = parsed[k]
    if name not in ("", "0") or spec or conversion is not None:
        return None
    prefix = "".join(literal for literal, *_ in parsed[: k + 1])
    suffix = "".join(literal for literal, *_ in parsed[k + 1 :])
    for probe in ("x", "a b{}"):  # belt and braces: the split must rebuild the format
        if template.format(probe) != prefix + probe + suffix:
            return None
    return prefix, suffix


def _supported(tokenizer, open_clip) -> bool:
    """True for a plain open_clip SimpleTokenizer with the settings the fast path knows."""
    module = getattr(open_clip, "tokenizer", None)
    cls = getattr(module, "SimpleTokenizer", None)
    clean_lower = getattr(module, "_clean_lower", None)
    pat = getattr(tokenizer, "pat", None)
    return (
        cls is not None
        and clean_lower is not None
        and type(tokenizer) is cls
        and getattr(tokenizer, "clean_fn", None) is clean_lower
        and getattr(tokenizer, "reduction_fn", "missing") is None
        and bool(getattr(tokenizer, "context_length", None))
        and getattr(pat, "pattern", None) == _SPLIT_PATTERN
        and all(
            hasattr(tokenizer, name)
            for name in ("bpe", "encoder", "byte_encoder", "sot_token_id", "eot_token_id")
        )
    )


# Prompts on which a new NounPromptTokenizer checks itself against open_clip.
_PROBE_NOUNS = (
    "dog",
    "hot_dog",
    "Mr.",
    "'hood",
    "U.S.A.",
    "rock'n'roll",
    "3-D",
    "  two  spaces ",
    "word " * 40,
    "x" * 120,
)
_PROBE_TEMPLATES = ("itap of a {}.", "{}", "'{}'s", "a {} in a video game.", "{}!", "({})")


class NounPromptTokenizer:
    """Tokenize ``template.format(noun)`` prompts as a ``SimpleTokenizer`` does, faster.

    Build it with :meth:`for_tokenizer`, which returns ``None`` for tokenizers it does not
    support. Calling it returns the same ids as ``tokenizer(prompts)``.

    Parameters
    ----------
    tokenizer : open_clip.tokenizer.SimpleTokenizer
        The model's tokenizer; its vocabulary, BPE and BPE cache are used.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._findall = tokenizer.pat.findall
        self._chunk_ids: dict[str, tuple[int, ...]] = {}
        self._template_parts: dict[str, tuple | None] = {}
        #: (nouns, templates) bool mask of the last call's prompts that open_clip
        #: tokenized itself (the fallback), and their number.
        self.last_fallback = np.zeros((0, 0), dtype=bool)
        self.last_fallback_rows = 0

    @classmethod
    def for_tokenizer(cls, tokenizer):
        """The fast tokenizer of ``tokenizer``, or ``None`` if it is not supported.

        Supported: see the module docstring. The result is cached per tokenizer object.
        """
        try:
            return _BY_TOKENIZER[tokenizer]
        except (KeyError, TypeError):
            pass
        fast = None
        open_clip = import_open_clip()
        if _supported(tokenizer, open_clip):
            fast = cls(tokenizer)
            if not fast._agrees_with_tokenizer():
                logger.info(
                    "open_clip's SimpleTokenizer gave other ids than the spliced prompts on "
                    "the self-check; noun prompts use the model's tokenizer"
                )
                fast = None
        try:
            _BY_TOKENIZER[tokenizer] = fast
        except TypeError:  # pragma: no cover - not weak-referenceable
            pass
        return fast

    def _agrees_with_tokenizer(self) -> bool:
        nouns, templates = list(_PROBE_NOUNS), list(_PROBE_TEMPLATES)
        mine = self(nouns, templates)
        theirs = self.tokenizer([t.format(n) for n in nouns for t in templates])
        return mine.shape == theirs.shape and bool(torch.equal(mine, theirs))

    # ------------------------------------------------------------------ pieces

    def _ids_of_chunk(self, chunk: str) -> tuple[int, ...]:
        tok = self.tokenizer
        byte_encoder = tok.byte_encoder
        encoded = "".join(byte_encoder[b] for b in chunk.encode("utf-8"))
        ids = tuple(tok.encoder[piece] for piece in tok.bpe(encoded).split(" "))
        if len(self._chunk_ids) >= _MAX_CACHED_CHUNKS:
            self._chunk_ids.clear()
        self._chunk_ids[chunk] = ids
        return ids

    def _parts(self, template: str):
        """``(prefix ids, suffix ids, class of the prefix's last char, of the suffix's
        first char)`` of a template that can be spliced, else None."""
        if template in self._template_parts:
            return self._template_parts[template]
        parts = None
        split = _split_template(template)
        if split is not None and all(_is_safe_text(s) for s in split):
            prefix, suffix = split
            parts = (
                list(self.tokenizer.encode(prefix)),
                list(self.tokenizer.encode(suffix)),
                _CLASS_OF[prefix[-1]] if prefix else _NONE,
                _CLASS_OF[suffix[0]] if suffix else _NONE,
            )
        self._template_parts[template] = parts
        return parts

    def _noun_ids(self, nouns):
        """Ids of each noun alone (``[]`` for unsafe ones), and the classes of its ends.

        Returns ``(ids, first, last)``: a list of id sequences and two int8 arrays of
        character classes; ``first[i] == -1`` marks a noun that must take the fallback.
        """
        n = len(nouns)
        first = np.full(n, -1, dtype=np.int8)
        last = np.full(n, -1, dtype=np.int8)
        ids_of = []
        append = ids_of.append
        cache = self._chunk_ids
        findall = self._findall
        classes = _CLASS_OF
        for i, noun in enumerate(nouns):
            if not _is_safe_text(noun) or not noun.strip(" "):
                append(())
                continue
            # Safe text: cleaning is lowering (whitespace only separates chunks).
            ids = []
            for chunk in findall(noun.lower()):
                chunk_ids = cache.get(chunk)
                if chunk_ids is None:
                    chunk_ids = self._ids_of_chunk(chunk)
                ids += chunk_ids
            append(ids)
            first[i] = classes[noun[0]]
            last[i] = classes[noun[-1]]
        return ids_of, first, last

    # ------------------------------------------------------------------ the call

    def __call__(self, nouns, templates) -> torch.Tensor:
        """Tokens of every prompt, noun-major: row ``i * len(templates) + j`` holds
        ``tokenizer(templates[j].format(nouns[i]))``.

        Parameters
        ----------
        nouns : sequence of str
        templates : sequence of str
            Each formatted with one argument (``template.format(noun)``).

        Returns
        -------
        tokens : LongTensor of shape (len(nouns) * len(templates), context_length)
        """
        tok = self.tokenizer
        ctx = int(tok.context_length)
        sot, eot = int(tok.sot_token_id), int(tok.eot_token_id)
        nouns, templates = list(nouns), list(templates)
        n, n_t = len(nouns), len(templates)
        out = np.zeros((n, n_t, ctx), dtype=np.int64)

        noun_ids, first, last = self._noun_ids(nouns)
        lengths = np.fromiter(map(len, noun_ids), dtype=np.int64, count=n)
        # Each noun's ids, zero-padded; only the first ctx ids of a noun can be kept.
        kept = np.minimum(lengths, ctx)
        width = int(kept.max()) if n else 0
        padded = np.zeros((n, width), dtype=np.int64)
        if width:
            flat = np.fromiter(
                itertools.chain.from_iterable(noun_ids), dtype=np.int64, count=int(lengths.sum())
            )
            rows = np.repeat(np.arange(n), kept)
            cols = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
            padded[rows, cols] = flat[np.repeat(np.cumsum(lengths) - lengths, kept) + cols]

        slow = np.zeros((n, n_t), dtype=bool)
        unsafe_noun = first < 0
        for j, template in enumerate(templates):
            parts = self._parts(template)
            if parts is None:
                slow[:, j] = True
                continue
            prefix_ids, suffix_ids, before, after = parts
            slow[:, j] = (
                unsafe_noun
                | _JOINS[before, np.where(unsafe_noun, _NONE, first)]
                | _JOINS[np.where(unsafe_noun, _NONE, last), after]
            )
            rows_j = out[:, j, :]
            head = np.asarray([sot, *prefix_ids], dtype=np.int64)[:ctx]
            rows_j[:, : len(head)] = head
            start = len(head)
            if width and start < ctx:
                w = min(width, ctx - start)
                rows_j[:, start : start + w] = padded[:, :w]
            tail = np.asarray([*suffix_ids, eot], dtype=np.int64)
            tail_cols = start + kept[:, None] + np.arange(len(tail))[None, :]
            inside = tail_cols < ctx
            where_rows, where_k = np.nonzero(inside)
            rows_j[where_rows, tail_cols[inside]] = tail[where_k]
            # open_clip's truncation: keep the first ctx ids, the last becomes EOT.
            rows_j[1 + len(prefix_ids) + lengths + len(tail) > ctx, ctx - 1] = eot

        slow_i, slow_j = np.nonzero(slow)
        self.last_fallback, self.last_fallback_rows = slow, len(slow_i)
        if len(slow_i):
            prompts = [templates[j].format(nouns[i]) for i, j in zip(slow_i, slow_j, strict=True)]
            out[slow_i, slow_j] = tok(prompts).numpy()
        return torch.from_numpy(out.reshape(n * n_t, ctx))


_BY_TOKENIZER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenize_prompts(tokenizer, nouns, templates):
    """Tokens of ``[t.format(noun) for noun in nouns for t in templates]``, or None.

    ``None`` means ``tokenizer`` is not one that :class:`NounPromptTokenizer` supports;
    the caller then tokenizes the prompts with it as usual.
    """
    fast = NounPromptTokenizer.for_tokenizer(tokenizer)
    return None if fast is None else fast(nouns, templates)
