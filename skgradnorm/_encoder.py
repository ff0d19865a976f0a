"""CLIPEncoder: embed images, texts and a noun bank with an open_clip CLIP model.

open_clip is imported lazily (on first use, through :func:`skgradnorm._compat.
import_open_clip`), so ``import skgradnorm`` stays light. The text tower runs through a
fast path (see the "text tower" section below) that gives open_clip's ``encode_text``
results without paying for its fixed 77-token context.
"""

from __future__ import annotations

import difflib
import logging
import os
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions

from . import _noun_cache
from ._compat import import_open_clip
from ._torch_utils import resolve_device

__all__ = [
    "CLIPEncoder",
    "PAPER_TEMPLATES",
    "PretrainedWeightsError",
    "UnreadableImageError",
]

logger = logging.getLogger(__name__)

#: The seven prompt templates of the paper (and TAC) for embedding a noun.
PAPER_TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_LOCAL_DIR = "local-dir:"
_HF_HUB = "hf-hub:"
# Texts are tokenized in blocks of this many (a 77-token int64 row is 616 bytes).
_TOKENIZE_BLOCK = 16384


class UnreadableImageError(ValueError):
    """Some image files could not be read; ``failures`` lists ``(file, reason)`` for each."""

    def __init__(self, failures):
        self.failures = list(failures)
        lines = [f"  {name}: {reason}" for name, reason in self.failures]
        super().__init__(
            f"{len(self.failures)} image(s) could not be read:\n"
            + "\n".join(lines)
            + "\nRemove or replace these files and call again."
        )


class PretrainedWeightsError(RuntimeError):
    """The requested pretrained weights could not be loaded (often: no network)."""


# --------------------------------------------------------------------------- OOM back-off


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    # Apple's MPS reports memory exhaustion as a plain RuntimeError.
    return isinstance(exc, RuntimeError) and "MPS backend out of memory" in str(exc)


def _run_with_oom_backoff(fn, items, batch_size, *, on_batch=None):
    """Apply ``fn`` to consecutive slices of ``items``, halving the slice on out-of-memory.

    ``fn(items[start:stop])`` is called for slices of at most ``batch_size`` items. When it
    raises ``torch.cuda.OutOfMemoryError`` (or MPS's out-of-memory error), the batch size is
    set to half the failed slice, the CUDA cache is emptied and the rest is tried again; a
    slice of one item that runs out of memory raises the error.

    Returns
    -------
    outputs : list
        ``fn``'s results, in order.
    batch_size : int
        The batch size that worked last (callers reuse it for the next call).
    """
    batch_size = max(1, int(batch_size))
    outputs = []
    start = 0
    n = len(items)
    while start < n:
        stop = min(n, start + batch_size)
        failed = False
        try:
            out = fn(items[start:stop])
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if not _is_out_of_memory(exc) or stop - start == 1:
                raise
            failed = True
        if failed:
            # Outside the except block, so the failed attempt's tensors are released first.
            batch_size = max(1, (stop - start) // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            logger.warning("out of memory; retrying with batch size %d", batch_size)
            continue
        outputs.append(out)
        if on_batch is not None:
            on_batch(stop - start)
        start = stop
    return outputs, batch_size


# --------------------------------------------------------------------------- text tower
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


def _text_tower_of(model, open_clip) -> _TextTower | None:
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


# --------------------------------------------------------------------------- images


def _to_rgb(image):
    """A PIL image in RGB mode (alpha dropped, palette/grayscale/CMYK converted)."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when converting such palettes straight to RGB
    return image.convert("RGB")


def _array_to_pil(array: np.ndarray, where: str):
    from PIL import Image

    if array.dtype != np.uint8:
        raise ValueError(
            f"{where}: image arrays must have dtype uint8 (values 0-255); got {array.dtype}. "
            "Convert with (x * 255).round().astype(np.uint8) for floats in [0, 1]."
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        return Image.fromarray(np.ascontiguousarray(array), mode=mode)
    raise ValueError(
        f"{where}: an image array must be H x W (grayscale) or H x W x C with C in 1, 3, 4; "
        f"got shape {array.shape}."
    )


def _as_image_items(X) -> list:
    """Split the accepted inputs of ``transform`` into a list of single images."""
    from PIL import Image

    if X is None:
        raise ValueError("X is None; pass a list of image paths, PIL images or uint8 arrays.")
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(
            f"X must be a list of images; got a single path {X!r}. Wrap it in a list: [path]."
        )
    if isinstance(X, Image.Image):
        return [X]
    if isinstance(X, np.ndarray):
        if X.dtype == object:
            items = list(X.ravel())
        elif X.dtype.kind in "US":  # an array of file names
            items = [x.decode() if isinstance(x, bytes) else str(x) for x in X.ravel()]
        elif X.ndim == 4:
            items = list(X)
        elif X.ndim in (2, 3):
            items = [X]
        else:
            raise ValueError(
                "an image array must be H x W, H x W x C or a batch N x H x W x C; "
                f"got shape {X.shape}."
            )
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(
                "X must be a sequence of image paths (str or pathlib.Path), PIL images or "
                f"uint8 numpy arrays; got {type(X).__name__}."
            ) from None
    if not items:
        raise ValueError("X is empty; pass at least one image.")
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            if item.ndim not in (2, 3):
                raise ValueError(
                    f"X[{i}]: an image array must be H x W or H x W x C; got shape {item.shape}."
                )
            if item.dtype != np.uint8:
                _array_to_pil(item, f"X[{i}]")  # raises the dtype error
        elif not isinstance(item, (str, os.PathLike, Image.Image)):
            raise TypeError(
                f"X[{i}] is a {type(item).__name__}; each image must be a file path (str or "
                "pathlib.Path), a PIL image or a uint8 numpy array."
            )
    return items


def _check_image_files(items) -> None:
    """Check every image file before the model runs; raise one error listing all bad files.

    ``Image.verify`` is cheap (31,000 files/s measured): it reads headers, and checksums in
    PNG files, not pixels, so a truncated JPEG passes it. When it finds bad files, the
    remaining files are decoded fully too, so that the error lists every unreadable file
    rather than only those ``verify`` catches. Files that pass ``verify`` but fail to
    decode on the happy path (a truncated JPEG) are collected while embedding (see
    ``CLIPEncoder._encode_images``) and reported together as well, after the encoding.
    """
    from PIL import Image

    paths = [os.fspath(item) for item in items if isinstance(item, (str, os.PathLike))]
    failures = []
    for path in paths:
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as exc:  # PIL raises many types for corrupt files
            failures.append((path, f"{type(exc).__name__}: {exc}"))
    if failures:
        seen = {path for path, _ in failures}
        for path in paths:
            if path in seen:
                continue
            try:
                with Image.open(path) as im:
                    im.load()
            except Exception as exc:
                failures.append((path, f"{type(exc).__name__}: {exc}"))
        order = {path: i for i, path in enumerate(paths)}
        failures.sort(key=lambda f: order[f[0]])
        raise UnreadableImageError(failures)


class _ImageDataset(torch.utils.data.Dataset):
    """Loads (for paths), converts to RGB and preprocesses one image per index."""

    def __init__(self, items, preprocess):
        self.items = items
        self.preprocess = preprocess

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        from PIL import Image

        item = self.items[index]
        try:
            if isinstance(item, (str, os.PathLike)):
                with Image.open(os.fspath(item)) as im:
                    im.load()
                    image = _to_rgb(im)
                    if image is im:
                        image = im.copy()
            elif isinstance(item, np.ndarray):
                image = _to_rgb(_array_to_pil(item, f"X[{index}]"))
            else:
                image = _to_rgb(item)
            return index, self.preprocess(image), None
        except Exception as exc:  # reported together at the end, see _encode_images
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"X[{index}]"
            return index, None, (name, f"{type(exc).__name__}: {exc}")


def _collate(samples):
    indices = [i for i, t, _ in samples if t is not None]
    tensors = [t for _, t, _ in samples if t is not None]
    failures = [f for _, t, f in samples if t is None]
    batch = torch.stack(tensors) if tensors else None
    return indices, batch, failures


# --------------------------------------------------------------------------- the model


@dataclass
class _ModelBundle:
    params: tuple
    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    device: torch.device
    precision: str
    image_dtype: torch.dtype
    embed_dim: int
    text_tower: _TextTower | None
    source_kind: str  # "tag", "file", "local-dir", "hf-hub", "random"
    source: str | None
    arch_name: str
    _weights_identity: dict | None = field(default=None, repr=False)

    def weights_identity(self, cache_root) -> dict:
        if self._weights_identity is None:
            if self.source_kind == "file":
                path = Path(self.source)
                ident = {
                    "kind": "file",
                    "size": path.stat().st_size,
                    "sha256": _noun_cache.file_sha256(path, cache_root=cache_root),
                }
            elif self.source_kind == "local-dir":
                folder = Path(self.source)
                files = {}
                for p in sorted(folder.iterdir()):
                    if p.is_file() and not p.name.startswith("."):
                        files[p.name] = _noun_cache.file_sha256(p, cache_root=cache_root)
                ident = {"kind": "local-dir", "files": files}
            else:
                ident = {"kind": self.source_kind, "name": self.source}
            self._weights_identity = ident
        return self._weights_identity


def _input_dtype(module: torch.nn.Module) -> torch.dtype:
    """dtype of the first convolution or linear weight (what the input must be cast to)."""
    for sub in module.modules():
        if isinstance(sub, (torch.nn.Conv2d, torch.nn.Linear)):
            return sub.weight.dtype
    return next(module.parameters()).dtype  # pragma: no cover - no such tower in open_clip


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(("~", "."))
        or value.lower().endswith(_WEIGHT_SUFFIXES)
    )


def _resolve_source(model_name: str, pretrained, known_tags=()):
    """-> (open_clip model name, open_clip pretrained, kind, source).

    As in open_clip, a known pretrained tag of ``model_name`` wins over a file of the same
    name; otherwise existing files and folders are local weights.
    """
    if model_name.startswith(_LOCAL_DIR):
        folder = Path(model_name[len(_LOCAL_DIR) :]).expanduser()
        return f"{_LOCAL_DIR}{folder}", None, "local-dir", str(folder.resolve())
    if model_name.startswith(_HF_HUB):
        return model_name, None, "hf-hub", model_name
    if pretrained is None:
        return model_name, None, "random", None
    pretrained = os.fspath(pretrained)
    if not pretrained.strip():
        raise ValueError(
            "pretrained is an empty string; give an open_clip tag such as 'openai', a local "
            "weights file or folder, or None for random weights."
        )
    if pretrained in known_tags:
        return model_name, pretrained, "tag", pretrained
    if pretrained.startswith(_LOCAL_DIR):
        folder = Path(pretrained[len(_LOCAL_DIR) :]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"pretrained={pretrained!r}: folder {str(folder)!r} does not exist; it must hold "
                "open_clip_config.json and open_clip_model.safetensors."
            )
        return f"{_LOCAL_DIR}{folder}", None, "local-dir", str(folder.resolve())
    expanded = Path(pretrained).expanduser()
    if expanded.is_dir():
        return f"{_LOCAL_DIR}{expanded}", None, "local-dir", str(expanded.resolve())
    if expanded.is_file():
        return model_name, str(expanded), "file", str(expanded.resolve())
    if _looks_like_path(pretrained):
        raise FileNotFoundError(
            f"pretrained={pretrained!r} looks like a path but no such file or folder exists. "
            "Pass an open_clip weights file (.pt, .bin or .safetensors), a folder (or "
            "'local-dir:/path') holding open_clip_config.json and open_clip_model.safetensors, "
            "or an open_clip pretrained tag such as 'openai'."
        )
    return model_name, pretrained, "tag", pretrained


def _weights_advice(model_name: str, pretrained, open_clip) -> str:
    try:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
    except Exception:  # pragma: no cover - defensive
        tags = []
    known = f" Known tags for {model_name!r}: {', '.join(tags)}." if tags else ""
    return (
        "open_clip fetches tagged weights from the Hugging Face Hub (or the original URLs), "
        "which needs network access (and HF_HUB_OFFLINE unset) unless they are already in its "
        "cache. Without network, copy the weights to this machine and pass them locally: "
        f"CLIPEncoder(model_name={model_name!r}, "
        "pretrained='/path/to/open_clip_model.safetensors') "
        "(a .safetensors, .bin or .pt state dict of this architecture), or "
        "pretrained='local-dir:/path/to/folder' (a folder holding open_clip_config.json and "
        f"open_clip_model.safetensors).{known}"
    )


# --------------------------------------------------------------------------- the estimator


class CLIPEncoder(TransformerMixin, BaseEstimator):
    """Embed images, texts and nouns with an open_clip CLIP model.

    A stateless transformer: :meth:`transform` maps a list of images to L2-normalised CLIP
    image embeddings. :meth:`encode_texts` and :meth:`encode_nouns` embed strings with the
    text tower; nouns go through the prompt-template ensemble of the paper and their
    embeddings are cached on disk. The model is loaded on first use (not by ``__init__`` or
    :meth:`fit`) and is never pickled: an unpickled or cloned encoder loads it again.

    Text encoding does not pay for CLIP's fixed 77-token context: prompts are sorted by
    token length, batched, each batch is cut to its longest prompt and the text tower runs
    with its causal attention mask cut to match. The results equal open_clip's
    ``encode_text`` (to float rounding) at several times the speed.

    Parameters
    ----------
    model_name : str, default="ViT-B-32"
        An open_clip architecture name (``open_clip.list_models()``), or
        ``"hf-hub:org/repo"`` / ``"local-dir:/path"`` (then ``pretrained`` is ignored).
    pretrained : str, path-like or None, default="openai"
        The weights. An open_clip pretrained tag (``open_clip.list_pretrained()``), fetched
        by open_clip's normal loading (this needs network access the first time); or a
        local weights file (``.pt``, ``.bin``, ``.safetensors``) for ``model_name``; or a
        folder, or ``"local-dir:/path"``, holding ``open_clip_config.json`` and
        ``open_clip_model.safetensors`` (its config then defines the architecture). ``None``
        builds the architecture with random weights, which is only useful for tests and
        benchmarks (a warning says so).
    device : str, torch.device or None, default=None
        Where the model runs. ``None`` picks CUDA, then Apple's MPS, then the CPU.
    precision : {"fp32", "fp16", "bf16"} or None, default=None
        The model's precision. ``None`` means ``"fp16"`` on CUDA and ``"fp32"`` elsewhere.
        Outputs are float32 in every case.
    batch_size : int, default=64
        Images per forward pass. On out-of-memory errors the batch is halved and retried.
    text_batch_size : int, default=256
        Prompts per forward pass of the text tower (halved on out-of-memory errors).
    num_workers : int, default=0
        Worker processes (a torch ``DataLoader``) that read and preprocess images; 0 reads
        them in the main process.
    templates : sequence of str or None, default=None
        Prompt templates for :meth:`encode_nouns`, each with one ``{}`` for the noun.
        ``None`` uses the paper's seven templates, :data:`PAPER_TEMPLATES`.
    cache_dir : str, path-like, False or None, default=None
        Folder for the noun-embedding cache. ``None`` uses ``$SKGRADNORM_CACHE`` if set,
        else ``~/.cache/skgradnorm`` (``$XDG_CACHE_HOME/skgradnorm``). ``False`` disables
        the cache.
    verbose : bool, default=False
        Show progress bars for long encodes.

    See Also
    --------
    skgradnorm.vocabulary.wordnet_nouns : The WordNet noun bank.

    Notes
    -----
    This transformer learns nothing; :meth:`fit` only validates the parameters. The loaded
    model is kept in a private attribute that is dropped when pickling.

    A noun's embedding is the mean of the raw (unnormalised) text embeddings of its
    prompts, one per template, then L2-normalised.

    Examples
    --------
    Creating and fitting the encoder loads nothing; the weights are fetched on first use
    (the lines marked ``+SKIP`` need them, and network access or local weights):

    >>> from skgradnorm import CLIPEncoder
    >>> enc = CLIPEncoder(model_name="ViT-B-32", pretrained="openai")
    >>> enc.fit() is enc
    True
    >>> U = enc.transform(["cat.jpg", "dog.png"])  # doctest: +SKIP
    >>> U.shape, U.dtype  # doctest: +SKIP
    ((2, 512), dtype('float32'))
    >>> E = enc.encode_nouns(["cat", "dog", "car"])  # doctest: +SKIP
    >>> (U @ E.T).argmax(axis=1)  # doctest: +SKIP
    array([0, 1])

    The same calls run offline on the architecture with random weights (``pretrained=None``,
    meaningful for shapes and speed only; pass a local weights file for real embeddings):

    >>> import numpy as np
    >>> enc = CLIPEncoder("ViT-B-32", pretrained=None, device="cpu", cache_dir=False)
    >>> images = np.zeros((2, 64, 64, 3), dtype=np.uint8)  # an N x H x W x C uint8 batch
    >>> U = enc.transform(images)
    >>> U.shape, U.dtype
    ((2, 512), dtype('float32'))
    >>> enc.encode_nouns(["cat", "dog", "car"]).shape
    (3, 512)

    Without network, pass local weights instead of a tag:

    >>> enc = CLIPEncoder("ViT-B-32", pretrained="/models/open_clip_model.safetensors")
    >>> enc = CLIPEncoder(pretrained="local-dir:/models/vit-b-32")  # config + weights
    """

    _parameter_constraints: dict = {
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str, torch.device, None],
        "precision": [StrOptions({"fp32", "fp16", "bf16"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "text_batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "templates": ["array-like", None],
        "cache_dir": [str, os.PathLike, Options(bool, {False}), None],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        model_name="ViT-B-32",
        pretrained="openai",
        *,
        device=None,
        precision=None,
        batch_size=64,
        text_batch_size=256,
        num_workers=0,
        templates=None,
        cache_dir=None,
        verbose=False,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.text_batch_size = text_batch_size
        self.num_workers = num_workers
        self.templates = templates
        self.cache_dir = cache_dir
        self.verbose = verbose

    # ----------------------------------------------------------------- sklearn protocol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_model_bundle", None)
        return state

    def fit(self, X=None, y=None):
        """Validate the parameters; nothing is learned and no model is loaded.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self : CLIPEncoder
        """
        self._validate_params()
        self._checked_templates()
        return self

    def transform(self, X):
        """Embed images.

        Parameters
        ----------
        X : sequence of images, PIL image or ndarray
            A list (or other sequence) whose items are image file paths (str or
            ``pathlib.Path``), PIL images or uint8 arrays (H x W grayscale, H x W x C with C
            in 1, 3, 4). A single uint8 array is one image (H x W or H x W x C) or a batch
            (N x H x W x C). RGBA, palette, grayscale and CMYK images are converted to RGB
            (alpha is dropped). Images are preprocessed with the model's own transform.

        Returns
        -------
        embeddings : ndarray of shape (n_images, embed_dim), float32
            L2-normalised image embeddings, in the order of ``X``.

        Raises
        ------
        UnreadableImageError
            If image files cannot be read; the error lists every such file.
        """
        self._validate_params()
        items = _as_image_items(X)
        _check_image_files(items)
        bundle = self._get_bundle()
        return self._encode_images(bundle, items)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``clipencoder0``, ``clipencoder1``, ...

        This loads the model (to learn the embedding dimension).
        """
        d = self._get_bundle().embed_dim
        return np.asarray([f"clipencoder{i}" for i in range(d)], dtype=object)

    # ----------------------------------------------------------------- public encoders

    def encode_texts(self, texts):
        """Embed raw strings with the text tower.

        Parameters
        ----------
        texts : sequence of str
            The texts (prompts), used as given.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embed_dim), float32
            L2-normalised text embeddings.
        """
        self._validate_params()
        texts = _check_strings(texts, "texts")
        bundle = self._get_bundle()
        return _l2_normalize(self._encode_prompts(bundle, texts, progress=self.verbose))

    def encode_nouns(self, nouns):
        """Embed nouns through the prompt-template ensemble, with a disk cache.

        Each noun is put into every template; the raw (unnormalised) text embeddings of its
        prompts are averaged and the mean is L2-normalised. Unless ``cache_dir=False``, the
        result is cached on disk in resumable chunks (see ``skgradnorm._noun_cache``), keyed
        by the model, its weights, the nouns, the templates, the precision and the library
        versions; a second call with the same inputs computes nothing.

        Parameters
        ----------
        nouns : sequence of str
            The vocabulary, e.g. :func:`skgradnorm.vocabulary.wordnet_nouns`.

        Returns
        -------
        embeddings : ndarray of shape (n_nouns, embed_dim), float32
            L2-normalised noun embeddings, in the order of ``nouns``.
        """
        self._validate_params()
        templates = self._checked_templates()
        nouns = _check_strings(nouns, "nouns")
        bundle = self._get_bundle()

        def compute(chunk, progress):
            return self._encode_noun_chunk(bundle, chunk, templates, progress)

        cache_root = _noun_cache.resolve_cache_dir(self.cache_dir)
        cache = None
        if cache_root is not None and bundle.source_kind == "random":
            logger.info("random weights (pretrained=None): noun embeddings are not cached")
        elif cache_root is not None:
            open_clip = import_open_clip()
            key = {
                "model": bundle.arch_name,
                "weights": bundle.weights_identity(cache_root),
                "vocabulary_sha256": _noun_cache.vocabulary_sha256(nouns),
                "n_nouns": len(nouns),
                "templates": list(templates),
                "precision": bundle.precision,
                "aggregation": "mean of raw prompt embeddings, then L2",
                "versions": {"open_clip": open_clip.__version__, "torch": torch.__version__},
            }
            cache = _noun_cache.NounEmbeddingCache(
                cache_root, key, chunk_size=_noun_cache.DEFAULT_CHUNK_SIZE
            )
        return _noun_cache.embed_nouns_in_chunks(
            nouns,
            compute,
            cache=cache,
            chunk_size=_noun_cache.DEFAULT_CHUNK_SIZE,
            verbose=self.verbose,
        )

    # ----------------------------------------------------------------- internals

    def _checked_templates(self):
        templates = PAPER_TEMPLATES if self.templates is None else self.templates
        if isinstance(templates, str):
            raise ValueError(
                "templates must be a sequence of strings, not one string; "
                f"use templates=[{templates!r}]."
            )
        templates = list(templates)
        if not templates:
            raise ValueError(
                "templates is empty; give at least one template such as 'a photo of a {}.'."
            )
        for t in templates:
            if not isinstance(t, str) or t.count("{}") != 1:
                raise ValueError(
                    "each template must be a string with exactly one '{}' for the noun; "
                    f"got {t!r}."
                )
            try:
                t.format("noun")
            except (IndexError, KeyError, ValueError) as exc:
                raise ValueError(
                    f"template {t!r} cannot be formatted with one noun ({exc}); double any "
                    "literal braces ('{{' and '}}')."
                ) from exc
        return templates

    def _bundle_params(self):
        device = resolve_device(self.device)
        precision = self.precision
        if precision is None:
            precision = "fp16" if device.type == "cuda" else "fp32"
        pretrained = os.fspath(self.pretrained) if self.pretrained is not None else None
        return (self.model_name, pretrained, str(device), precision)

    def _get_bundle(self) -> _ModelBundle:
        params = self._bundle_params()
        bundle = getattr(self, "_model_bundle", None)
        if bundle is None or bundle.params != params:
            bundle = self._load_bundle(params)
            self._model_bundle = bundle
        return bundle

    def _load_bundle(self, params) -> _ModelBundle:
        model_name, pretrained, device_str, precision = params
        device = torch.device(device_str)
        open_clip = import_open_clip()
        try:
            known_tags = open_clip.list_pretrained_tags_by_model(model_name)
        except Exception:  # pragma: no cover - defensive (names with schemas)
            known_tags = []
        oc_name, oc_pretrained, kind, source = _resolve_source(model_name, pretrained, known_tags)
        if kind in ("tag", "file", "random"):
            cleaned = model_name.replace("/", "-")
            if open_clip.get_model_config(cleaned) is None:
                close = difflib.get_close_matches(cleaned, open_clip.list_models(), n=5)
                hint = f" Did you mean one of {close}?" if close else ""
                raise ValueError(
                    f"model_name={model_name!r} is not an open_clip architecture.{hint} "
                    "See open_clip.list_models()."
                )
        if kind == "random":
            warnings.warn(
                f"CLIPEncoder(pretrained=None) builds {model_name!r} with random weights: "
                "embeddings carry no meaning (useful for tests and benchmarks only).",
                UserWarning,
                stacklevel=4,
            )
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                oc_name, pretrained=oc_pretrained, precision=precision, device=device
            )
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            if kind in ("tag", "hf-hub"):
                raise PretrainedWeightsError(
                    f"Could not load pretrained={pretrained!r} for model_name={model_name!r} "
                    f"({type(exc).__name__}: {exc}). "
                    + _weights_advice(model_name, pretrained, open_clip)
                ) from exc
            raise
        model.eval()
        model.requires_grad_(False)
        tokenizer = open_clip.get_tokenizer(oc_name)
        image_dtype = _input_dtype(model.visual)
        text_tower = _text_tower_of(model, open_clip)
        if text_tower is None:
            logger.info(
                "%s: text tower not supported by the cut-context fast path; using encode_text",
                type(model).__name__,
            )
        with torch.inference_mode():
            probe = tokenizer(["a"]).to(device)
            embed_dim = int(model.encode_text(probe).shape[-1])
        return _ModelBundle(
            params=params,
            model=model,
            preprocess=preprocess,
            tokenizer=tokenizer,
            device=device,
            precision=precision,
            image_dtype=image_dtype,
            embed_dim=embed_dim,
            text_tower=text_tower,
            source_kind=kind,
            source=source,
            arch_name=oc_name if kind in ("local-dir", "hf-hub") else model_name,
        )

    def _encode_images(self, bundle: _ModelBundle, items) -> np.ndarray:
        from tqdm.auto import tqdm

        dataset = _ImageDataset(items, bundle.preprocess)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=bundle.device.type == "cuda",
        )
        out = np.zeros((len(items), bundle.embed_dim), dtype=np.float32)
        failures = []
        batch_size = self.batch_size
        model = bundle.model

        def run(images):
            images = images.to(bundle.device, dtype=bundle.image_dtype, non_blocking=True)
            return model.encode_image(images).float().cpu()

        with (
            torch.inference_mode(),
            tqdm(
                total=len(items), unit="img", desc="Embedding images", disable=not self.verbose
            ) as bar,
        ):
            for indices, batch, bad in loader:
                failures.extend(bad)
                if batch is not None and not failures:
                    parts, batch_size = _run_with_oom_backoff(run, batch, batch_size)
                    out[indices] = torch.cat(parts).numpy()
                bar.update(len(indices) + len(bad))
        if failures:
            raise UnreadableImageError(failures)
        return _l2_normalize(out)

    def _encode_prompts(
        self, bundle: _ModelBundle, texts, *, groups=None, progress=False, on_progress=None
    ) -> np.ndarray:
        """Raw (unnormalised) float32 text embeddings of ``texts``, in their order.

        ``groups`` optionally lists index arrays of texts likely to share their first
        tokens (the prompts of one template); the tokens a group shares are computed once.
        Without ``groups`` all texts form one group (they share at least the start token).
        ``progress`` shows a progress bar; ``on_progress(k)`` is called as ``k`` more texts
        are done.
        """
        from tqdm.auto import tqdm

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
        state = {"batch_size": self.text_batch_size}
        with (
            torch.inference_mode(),
            tqdm(total=n, unit="text", desc="Embedding texts", disable=not progress) as bar,
        ):

            def tick(k):
                bar.update(k)
                if on_progress is not None:
                    on_progress(k)

            for pieces in blocks:
                index = np.concatenate(pieces)
                out[index] = self._encode_token_block(
                    bundle, [[texts[i] for i in piece] for piece in pieces], state, tick
                )
        return out

    def _encode_token_block(self, bundle: _ModelBundle, pieces, state, tick) -> np.ndarray:
        """Embed lists of texts (each likely to share a prefix); raw float32, in order."""
        tower = bundle.text_tower
        model = bundle.model
        device = bundle.device
        token_pieces = [bundle.tokenizer(texts) for texts in pieces]
        tokens = torch.cat(token_pieces)
        if tower is None:

            def run(tok):
                return model.encode_text(tok.to(device)).float().cpu()

            parts, state["batch_size"] = _run_with_oom_backoff(
                run, tokens, state["batch_size"], on_batch=tick
            )
            return torch.cat(parts).numpy()

        pool_idx = tower.pool_index(tokens)
        piece_ids = torch.cat(
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
                starts = prefix.lengths.cpu()[piece_ids]
        # Group texts of similar length (what is left after the shared prefix, up to the
        # pooled token): sort by it, then cut the sorted list into batches of little padding.
        lengths = pool_idx + 1 - starts
        order = torch.argsort(lengths, stable=True)
        items = _TokenBatch(tokens[order], pool_idx[order], piece_ids[order])

        def run(batch):
            return (
                tower.forward(
                    batch.tokens.to(device, non_blocking=True),
                    batch.pool_idx.to(device, non_blocking=True),
                    prefix,
                    batch.piece_ids.to(device, non_blocking=True),
                )
                .float()
                .cpu()
            )

        parts = []
        for lo, hi in _plan_batches(lengths[order].tolist(), self.text_batch_size):
            done, state["batch_size"] = _run_with_oom_backoff(
                run, items[lo:hi], state["batch_size"], on_batch=tick
            )
            parts.extend(done)
        emb = torch.cat(parts).numpy()
        result = np.empty_like(emb)
        result[order.numpy()] = emb  # restore the original order
        return result

    def _encode_noun_chunk(self, bundle: _ModelBundle, nouns, templates, progress=None):
        n_t = len(templates)
        prompts = [t.format(noun) for noun in nouns for t in templates]
        # The prompts of one template share their first tokens: encode them together.
        groups = [np.arange(j, len(prompts), n_t) for j in range(n_t)]
        done = 0
        reported = 0

        def on_prompts(k):  # prompts done -> nouns done, for the noun progress bar
            nonlocal done, reported
            done += k
            step = done // n_t - reported
            if step and progress is not None:
                progress(step)
                reported += step

        raw = self._encode_prompts(bundle, prompts, groups=groups, on_progress=on_prompts)
        mean = raw.reshape(len(nouns), n_t, -1).mean(axis=1)
        return _l2_normalize(mean)


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

    __slots__ = ("tokens", "pool_idx", "piece_ids")

    def __init__(self, tokens, pool_idx, piece_ids):
        self.tokens = tokens
        self.pool_idx = pool_idx
        self.piece_ids = piece_ids

    def __len__(self):
        return self.tokens.shape[0]

    def __getitem__(self, sl):
        return _TokenBatch(self.tokens[sl], self.pool_idx[sl], self.piece_ids[sl])


def _check_strings(values, name):
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of strings, not one string; use [{values!r}].")
    try:
        values = list(values)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of strings; got {type(values).__name__}."
        ) from None
    if not values:
        raise ValueError(f"{name} is empty; pass at least one string.")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] is a {type(v).__name__}; all items must be str.")
    return [str(v) for v in values]


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows, **in place** for a float32 array (every caller passes an array it owns).

    In place and with ``row_norms`` (no squared temporary), so that embedding N images
    needs one (N, d) array, not three: at 1.28M x 512 each copy would be 2.6 GB.
    """
    from sklearn.utils.extmath import row_norms

    x = np.asarray(x, dtype=np.float32)
    norms = row_norms(x)[:, None]
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    x /= norms
    return x
