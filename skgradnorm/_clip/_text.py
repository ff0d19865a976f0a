"""The fast path of CLIP's text tower: open_clip's ``encode_text``, without its fixed context.

Which open_clip internals this relies on
----------------------------------------
The fast path reads the parts of open_clip's text tower and runs them itself:

- ``open_clip.CLIP`` (and ``CustomTextCLIP`` with a plain ``TextTransformer``):
  ``token_embedding``, ``positional_embedding``, ``transformer.resblocks``, ``attn_mask``,
  ``ln_final``, ``text_projection``, ``text_pool_type`` and ``text_eos_id``;
- every block being a plain ``open_clip.transformer.ResidualAttentionBlock`` whose
  ``attn`` is a ``torch.nn.MultiheadAttention`` with packed projections (the private
  ``_qkv_same_embed_dim``, ``in_proj_weight``, no ``bias_k``/``bias_v``, no
  ``add_zero_attn``), and whose ``ln_1``, ``ls_1``, ``ln_2``, ``mlp`` and ``ls_2`` it calls.

:func:`text_tower_of` checks all of this when the model loads. A tower that differs gets
only the context cut (through open_clip's own ``Transformer``), and a model it does not
recognise at all goes through ``model.encode_text`` unchanged: an open_clip release that
renames these parts makes the path slower, never wrong.

Which tests prove it exact
--------------------------
``tests/test_encoder.py`` compares every path with open_clip's ``encode_text`` on the same
weights: the prefix-sharing path, the cut-only path (``standard_blocks`` off), the
``encode_text`` fallback (no tower), odd batch sizes and the out-of-memory back-off, each
within 1e-5 (``test_encode_texts_matches_open_clip`` and its neighbours), and
``test_plan_batches_and_shared_prefix`` checks the batching helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._utils._progress import AVERAGE_SINCE_START, progress_bar
from .._utils._torch import run_with_oom_backoff

__all__ = ["encode_prompts"]

# Texts are tokenized in blocks of this many (a 77-token int64 row is 616 bytes).
_TOKENIZE_BLOCK = 16384

#
# CLIP's text tower is a causal transformer: the features of token i depend only on tokens
# 0..i. Two consequences make text encoding much cheaper than open_clip's encode_text,
# which always runs the full 77-token context:
#
# 1. Everything after the pooled (end-of-text) token can be dropped, provided the attention
#    mask is cut to the same length. Prompts are sorted by length and batched, and each
#    batch is cut to its longest prompt.
# 2. Prompts that start with the same tokens (the start-of-text token, and for a prompt
#    template the words before "{}") have identical hidden states at those positions.
#    Their keys and values are computed once and each prompt only runs its own suffix
#    ("prefix sharing", as a KV cache in language models). Prompts of different prefixes
#    (templates) are batched together: each row attends to its own prefix's keys.
#
# Moreover only the pooled token's output of the last block is used, so the last block
# computes its query, attention and MLP for that token only. (2) and this are done by
# running open_clip's standard ResidualAttentionBlock from its parts; towers built from
# other block types use (1) alone, through open_clip's own Transformer.


@dataclass
class _TextTower:
    """The pieces of a causal CLIP text tower that the fast path runs."""

    token_embedding: torch.nn.Module
    positional_embedding: torch.Tensor
    transformer: torch.nn.Module
    attn_mask: torch.Tensor
    ln_final: torch.nn.Module
    text_projection: object
    pool_type: str
    eos_id: int | None
    cast_dtype: torch.dtype
    # All blocks are standard open_clip ResidualAttentionBlocks, which _run_block can run
    # from their parts: enables prefix sharing and the pooled-only last block.
    standard_blocks: bool = False

    def pool_index(self, tokens: torch.Tensor) -> torch.Tensor:
        """Position of the pooled token in each row (as open_clip's ``text_global_pool``)."""
        if self.pool_type == "argmax":
            return tokens.argmax(dim=-1)
        if self.pool_type == "eos":
            return (tokens == self.eos_id).int().argmax(dim=-1)
        return torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)  # "first"

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens).to(self.cast_dtype)
        return x + self.positional_embedding[positions].to(self.cast_dtype)

    def _finish(self, pooled: torch.Tensor) -> torch.Tensor:
        # LayerNorm acts on each token separately: pooling first gives the same result.
        x = self.ln_final(pooled)
        proj = self.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
        return x

    def prefix_set(self, prefixes):
        """Keys and values of every block for some token prefixes, or None.

        ``prefixes`` is a list of 1-D token tensors (on the model's device). They are run
        together, padded to the longest; padded positions are never attended to later.
        Returns ``None`` when the tower cannot share prefixes or all prefixes are empty.
        """
        lengths = [int(p.shape[0]) for p in prefixes]
        if not self.standard_blocks or not lengths or max(lengths) == 0:
            return None
        longest = max(lengths)
        device = prefixes[0].device
        tokens = torch.zeros((len(prefixes), longest), dtype=torch.long, device=device)
        for row, prefix in enumerate(prefixes):
            tokens[row, : lengths[row]] = prefix
        x = self._embed(tokens, torch.arange(longest, device=device))
        pos = torch.arange(longest, device=device)
        allowed = pos[None, :] <= pos[:, None]  # causal, True = may attend
        kv = []
        for block in self.transformer.resblocks:
            x, k, v = _run_block(block, x, None, allowed)
            kv.append((k, v))
        return _PrefixSet(torch.tensor(lengths, device=device), longest, kv)

    def forward(self, tokens, pool_idx, prefix=None, prefix_ids=None):
        """open_clip's ``encode_text`` (unnormalised features) of full token rows, cut.

        Parameters
        ----------
        tokens : (B, context) token rows as the tokenizer gives them.
        pool_idx : (B,) position of each row's pooled token (:meth:`pool_index`).
        prefix : _PrefixSet or None
            Shared prefixes (from :meth:`prefix_set`); row ``b`` starts with prefix
            ``prefix_ids[b]``, which ends before its pooled token. Only the rest of each
            row is computed, and only up to its pooled token.
        """
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        if not self.standard_blocks:
            # Cut only: open_clip's own Transformer on the longest needed prefix.
            length = int(pool_idx.max()) + 1
            x = self._embed(tokens[:, :length], torch.arange(length, device=tokens.device))
            x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
            return self._finish(x[rows, pool_idx])
        if prefix is None:
            starts = torch.zeros_like(pool_idx)
            n_past = 0
        else:
            starts = prefix.lengths[prefix_ids]
            n_past = prefix.max_length
        rel_pool = pool_idx - starts  # pooled position within each row's own part
        steps = torch.arange(int(rel_pool.max()) + 1, device=tokens.device)
        positions = (starts[:, None] + steps[None, :]).clamp_(max=tokens.shape[1] - 1)
        x = self._embed(torch.gather(tokens, 1, positions), positions)
        # Attention masks (True = may attend): a row's own part is causal; of the past
        # (prefix) keys, only the row's own prefix length counts.
        own = steps[None, :] <= steps[:, None]  # (S, S)
        own_last = (steps[None, :] <= rel_pool[:, None])[:, None, None, :]  # (B, 1, 1, S)
        if n_past:
            past_ok = torch.arange(n_past, device=x.device)[None, :] < starts[:, None]
            past_ok = past_ok[:, None, None, :]  # (B, 1, 1, P)
            n, s = x.shape[0], steps.shape[0]
            allowed = torch.cat(
                [past_ok.expand(n, 1, s, n_past), own[None, None].expand(n, 1, s, s)], dim=-1
            )
            allowed_last = torch.cat([past_ok, own_last], dim=-1)
        else:
            allowed, allowed_last = own, own_last
        blocks = self.transformer.resblocks
        for i, block in enumerate(blocks):
            past = None
            if n_past:
                k, v = prefix.kv[i]
                past = (k, v) if k.shape[0] == 1 else (k[prefix_ids], v[prefix_ids])
            if i < len(blocks) - 1:
                x, _, _ = _run_block(block, x, past, allowed)
            else:  # only the pooled token's output of the last block is used
                x, _, _ = _run_block(block, x, past, allowed_last, select=(rows, rel_pool))
        return self._finish(x)


@dataclass
class _PrefixSet:
    lengths: torch.Tensor  # (n_prefixes,) tokens in each prefix
    max_length: int
    kv: list  # per block: (keys, values), each (n_prefixes, heads, max_length, head_dim)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    n, s, width = t.shape
    return t.reshape(n, s, heads, width // heads).transpose(1, 2)


def _run_block(block, x, past, allowed, select=None):
    """One open_clip ResidualAttentionBlock, run from its parts (batch first).

    Parameters
    ----------
    x : (B, S, D) hidden states of the new tokens.
    past : (keys, values) of earlier tokens, each (B or 1, heads, P, head_dim), or None.
    allowed : bool mask broadcastable to (B, heads, queries, P + S); True = may attend.
    select : (rows, positions) or None. If given, queries (and the block's output) are
        computed only for token ``positions[b]`` of row ``rows[b]``: output (B, D).

    Returns
    -------
    (output, keys, values) with this call's keys and values (B, heads, S, head_dim).
    """
    attn = block.attn
    n, s, width = x.shape
    heads = attn.num_heads
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    h = block.ln_1(x)
    if select is None:
        q, k, v = torch.nn.functional.linear(h, weight, bias).split(width, dim=-1)
        residual = x
    else:
        rows, positions = select
        q = torch.nn.functional.linear(
            h[rows, positions][:, None, :], weight[:width], None if bias is None else bias[:width]
        )
        k, v = torch.nn.functional.linear(
            h, weight[width:], None if bias is None else bias[width:]
        ).split(width, dim=-1)
        residual = x[rows, positions][:, None, :]
    q, k, v = (_split_heads(t, heads) for t in (q, k, v))
    k_all, v_all = k, v
    if past is not None:  # keys and values of earlier tokens, batch n or 1
        pk, pv = past
        k_all = torch.cat([pk.expand(n, -1, -1, -1), k], dim=2)
        v_all = torch.cat([pv.expand(n, -1, -1, -1), v], dim=2)
    out = torch.nn.functional.scaled_dot_product_attention(q, k_all, v_all, attn_mask=allowed)
    out = attn.out_proj(out.transpose(1, 2).reshape(n, -1, width))
    y = residual + block.ls_1(out)
    y = y + block.ls_2(block.mlp(block.ln_2(y)))
    if select is not None:
        y = y[:, 0]
    return y, k, v


def _has_standard_blocks(transformer, open_clip) -> bool:
    """True if every block is a plain open_clip ResidualAttentionBlock (self-attention)."""
    block_cls = getattr(open_clip.transformer, "ResidualAttentionBlock", None)
    blocks = getattr(transformer, "resblocks", None)
    if block_cls is None or blocks is None or len(blocks) == 0:
        return False
    for block in blocks:
        attn = getattr(block, "attn", None)
        ok = (
            type(block) is block_cls
            and not hasattr(block, "ln_1_kv")
            and isinstance(attn, torch.nn.MultiheadAttention)
            and attn._qkv_same_embed_dim
            and attn.in_proj_weight is not None
            and attn.bias_k is None
            and attn.bias_v is None
            and not attn.add_zero_attn
            and all(hasattr(block, name) for name in ("ln_1", "ls_1", "ln_2", "mlp", "ls_2"))
        )
        if not ok:
            return False
    return True


def text_tower_of(model, open_clip) -> _TextTower | None:
    """The fast-path view of ``model``'s text tower, or None if it is not supported."""
    pools = ("argmax", "eos", "first")
    if isinstance(model, open_clip.CLIP):
        mask = getattr(model, "attn_mask", None)
        pool = getattr(model, "text_pool_type", "argmax")
        if mask is None or pool not in pools:
            return None
        return _TextTower(
            token_embedding=model.token_embedding,
            positional_embedding=model.positional_embedding,
            transformer=model.transformer,
            attn_mask=mask,
            ln_final=model.ln_final,
            text_projection=model.text_projection,
            pool_type=pool,
            eos_id=getattr(model, "text_eos_id", None),
            cast_dtype=model.transformer.get_cast_dtype(),
            standard_blocks=_has_standard_blocks(model.transformer, open_clip),
        )
    text = getattr(model, "text", None)
    text_transformer_cls = getattr(open_clip.transformer, "TextTransformer", None)
    if (
        type(model).__name__ == "CustomTextCLIP"
        and text_transformer_cls is not None
        and type(text) is text_transformer_cls
        and getattr(text, "cls_emb", None) is None
        and getattr(text, "attn_mask", None) is not None
        and not getattr(text, "use_pad_mask", False)
        and getattr(text, "pool_type", None) in pools
    ):
        return _TextTower(
            token_embedding=text.token_embedding,
            positional_embedding=text.positional_embedding,
            transformer=text.transformer,
            attn_mask=text.attn_mask,
            ln_final=text.ln_final,
            text_projection=text.text_projection,
            pool_type=text.pool_type,
            eos_id=getattr(text, "eos_id", None),
            cast_dtype=text.transformer.get_cast_dtype(),
            standard_blocks=_has_standard_blocks(text.transformer, open_clip),
        )
    return None


def _shared_prefix_length(tokens: torch.Tensor, pool_idx: torch.Tensor) -> int:
    """Tokens that all rows share at their start, stopping before any pooled token."""
    if tokens.shape[0] == 0:
        return 0
    same = (tokens == tokens[:1]).all(dim=0)
    first_diff = int(torch.nonzero(~same)[0, 0]) if not bool(same.all()) else tokens.shape[1]
    return max(0, min(first_diff, int(pool_idx.min())))


def encode_prompts(
    bundle, texts, *, batch_size, groups=None, progress=False, on_progress=None, tokens=None
) -> np.ndarray:
    """Raw (unnormalised) float32 text embeddings of ``texts``, in their order.

    ``groups`` optionally lists index arrays of texts likely to share their first
    tokens (the prompts of one template); the tokens a group shares are computed once.
    Without ``groups`` all texts form one group (they share at least the start token).
    ``progress`` shows a progress bar; ``on_progress(k)`` is called as ``k`` more texts
    are done. ``tokens`` optionally gives the texts already tokenized, one row each, as
    ``bundle.tokenizer(texts)`` would (see ``_tokenizer.py``); they are not tokenized again.
    """
    n = len(texts)
    if groups is None:
        groups = [np.arange(n)]
    # Blocks of about _TOKENIZE_BLOCK texts, each a list of group pieces.
    blocks, block, size = [], [], 0
    for group in groups:
        group = np.asarray(group, dtype=np.int64)
        for start in range(0, len(group), _TOKENIZE_BLOCK):
            piece = group[start : start + _TOKENIZE_BLOCK]
            if size and size + len(piece) > _TOKENIZE_BLOCK:
                blocks.append(block)
                block, size = [], 0
            block.append(piece)
            size += len(piece)
    if block:
        blocks.append(block)

    out = np.empty((n, bundle.embed_dim), dtype=np.float32)
    state = {"batch_size": batch_size, "max_rows": batch_size}
    with (
        torch.inference_mode(),
        progress_bar(
            total=n,
            unit="text",
            desc="Embedding texts",
            enabled=progress,
            smoothing=AVERAGE_SINCE_START,  # shortest prompts first: the rate falls
        ) as bar,
    ):

        def tick(k):
            bar.update(k)
            if on_progress is not None:
                on_progress(k)

        for pieces in blocks:
            index = np.concatenate(pieces)
            if tokens is None:
                token_pieces = [bundle.tokenizer([texts[i] for i in piece]) for piece in pieces]
            else:
                token_pieces = [tokens[torch.from_numpy(piece)] for piece in pieces]
            out[index] = _encode_token_block(bundle, token_pieces, state, tick)
    return out


def _encode_token_block(bundle, token_pieces, state, tick) -> np.ndarray:
    """Embed pieces of token rows (each likely to share a prefix); raw float32, in order."""
    tower = bundle.text_tower
    model = bundle.model
    device = bundle.device
    tokens = torch.cat(token_pieces)
    if tower is None:

        def run(tok):
            return model.encode_text(tok.to(device)).float().cpu()

        parts, state["batch_size"] = run_with_oom_backoff(
            run, tokens, state["batch_size"], on_batch=tick
        )
        return torch.cat(parts).numpy()

    pool_idx = tower.pool_index(tokens)
    prefix_ids = torch.cat(
        [torch.full((len(t),), k, dtype=torch.long) for k, t in enumerate(token_pieces)]
    )
    prefix = None
    starts = torch.zeros_like(pool_idx)
    if tower.standard_blocks:
        prefixes, offset = [], 0
        for tok in token_pieces:
            shared = _shared_prefix_length(tok, pool_idx[offset : offset + len(tok)])
            prefixes.append(tok[0, :shared].to(device))
            offset += len(tok)
        prefix = tower.prefix_set(prefixes)
        if prefix is not None:
            starts = prefix.lengths.cpu()[prefix_ids]
    # Group texts of similar length (what is left after the shared prefix, up to the
    # pooled token): sort by it, then cut the sorted list into batches of little padding.
    lengths = pool_idx + 1 - starts
    order = torch.argsort(lengths, stable=True)
    items = _TokenBatch(tokens[order], pool_idx[order], prefix_ids[order])

    def run(batch):
        return (
            tower.forward(
                batch.tokens.to(device, non_blocking=True),
                batch.pool_idx.to(device, non_blocking=True),
                prefix,
                batch.prefix_ids.to(device, non_blocking=True),
            )
            .float()
            .cpu()
        )

    parts = []
    for lo, hi in _plan_batches(lengths[order].tolist(), state["max_rows"]):
        done, state["batch_size"] = run_with_oom_backoff(
            run, items[lo:hi], state["batch_size"], on_batch=tick
        )
        parts.extend(done)
    emb = torch.cat(parts).numpy()
    result = np.empty_like(emb)
    result[order.numpy()] = emb  # restore the original order
    return result


def _plan_batches(lengths, max_rows, max_padding=0.15, min_rows=16):
    """Cut a list of ascending token lengths into batches ``[(start, stop), ...]``.

    Each batch runs at the length of its longest (last) item, so a batch is closed when
    adding the next item would make the padded tokens exceed the real ones by more than
    ``max_padding`` (unless the batch is still smaller than ``min_rows``, where the
    per-batch overhead matters more than padding), or when it has ``max_rows`` items.
    """
    batches = []
    n = len(lengths)
    lo = 0
    while lo < n:
        hi = lo + 1
        total = lengths[lo]
        while hi < n and hi - lo < max_rows:
            rows = hi - lo + 1
            if rows > min_rows and rows * lengths[hi] > (1 + max_padding) * (total + lengths[hi]):
                break
            total += lengths[hi]
            hi += 1
        batches.append((lo, hi))
        lo = hi
    return batches


class _TokenBatch:
    """Sliceable rows (tokens, pool positions, prefix ids), so the OOM back-off can cut them."""

    __slots__ = ("tokens", "pool_idx", "prefix_ids")

    def __init__(self, tokens, pool_idx, prefix_ids):
        self.tokens = tokens
        self.pool_idx = pool_idx
        self.prefix_ids = prefix_ids

    def __len__(self):
        return self.tokens.shape[0]

    def __getitem__(self, sl):
        return _TokenBatch(self.tokens[sl], self.pool_idx[sl], self.prefix_ids[sl])
