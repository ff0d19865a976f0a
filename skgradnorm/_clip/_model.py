"""Loading a CLIP model for :class:`~skgradnorm.CLIPEncoder`: architecture and weights.

The weights come from an open_clip pretrained tag, a local file, a local folder
(``local-dir:``) or the Hugging Face Hub (``hf-hub:``). Two things are checked so that a
wrong or missing file fails at once with one clear line:

* a tag (or ``hf-hub:`` name) that can be neither read from a cache nor downloaded fails
  at once (``_hub.py``: :func:`~._hub.check_tag_loadable` before open_clip is imported,
  :func:`~._hub.check_hub_reachable` once it knows the tag's files), instead of after
  open_clip's download retries;
* a local file that open_clip cannot load as a state dict of the named architecture
  (garbage, another format, another architecture) raises
  :class:`~skgradnorm.exceptions.PretrainedWeightsError` naming the file and the
  architecture, not the loader's raw error.
"""

from __future__ import annotations

import difflib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._utils._compat import import_open_clip
from ..exceptions import PretrainedWeightsError, RandomWeightsWarning
from . import _noun_cache
from ._hub import (
    HF_HUB,
    LOCAL_DIR,
    check_hub_reachable,
    check_tag_loadable,
    known_tags,
    looks_like_path,
    one_line,
    weights_advice,
)
from ._text import text_tower_of

__all__ = ["ModelBundle", "load_bundle", "weights_source"]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the model


@dataclass
class ModelBundle:
    params: tuple
    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    device: torch.device
    precision: str
    image_dtype: torch.dtype
    embed_dim: int
    text_tower: object  # a _text._TextTower, or None
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


def _resolve_source(model_name: str, pretrained, tags=()):
    """-> (open_clip model name, open_clip pretrained, kind, source).

    As in open_clip, a known pretrained tag of ``model_name`` wins over a file of the same
    name; otherwise existing files and folders are local weights.
    """
    if model_name.startswith(LOCAL_DIR):
        folder = Path(model_name[len(LOCAL_DIR) :]).expanduser()
        return f"{LOCAL_DIR}{folder}", None, "local-dir", str(folder.resolve())
    if model_name.startswith(HF_HUB):
        return model_name, None, "hf-hub", model_name
    if pretrained is None:
        return model_name, None, "random", None
    pretrained = os.fspath(pretrained)
    if not pretrained.strip():
        raise ValueError(
            "pretrained is an empty string; give an open_clip tag such as 'openai', a local "
            "weights file or folder, or None for random weights."
        )
    if pretrained in tags:
        return model_name, pretrained, "tag", pretrained
    if pretrained.startswith(LOCAL_DIR):
        folder = Path(pretrained[len(LOCAL_DIR) :]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"pretrained={pretrained!r}: folder {str(folder)!r} does not exist; it must hold "
                "open_clip_config.json and open_clip_model.safetensors."
            )
        return f"{LOCAL_DIR}{folder}", None, "local-dir", str(folder.resolve())
    expanded = Path(pretrained).expanduser()
    _check_readable(pretrained, expanded)
    if expanded.is_dir():
        return f"{LOCAL_DIR}{expanded}", None, "local-dir", str(expanded.resolve())
    if expanded.is_file():
        return model_name, str(expanded), "file", str(expanded.resolve())
    if looks_like_path(pretrained):
        raise FileNotFoundError(
            f"pretrained={pretrained!r} looks like a path but no such file or folder exists. "
            "Pass an open_clip weights file (.pt, .bin or .safetensors), a folder (or "
            "'local-dir:/path') holding open_clip_config.json and open_clip_model.safetensors, "
            "or an open_clip pretrained tag such as 'openai'."
        )
    return model_name, pretrained, "tag", pretrained


def _check_readable(pretrained, path: Path) -> None:
    """A weights path that exists but cannot be read is said so, not "no such file"."""
    try:
        os.stat(path)
    except PermissionError:  # a folder on the way cannot be searched
        raise PermissionError(
            f"pretrained={pretrained!r} cannot be reached: permission denied on a folder of "
            "its path; fix the permissions or copy the weights somewhere readable."
        ) from None
    except (OSError, ValueError):
        return  # missing (said below) or not a path at all
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise PermissionError(
            f"pretrained={pretrained!r} exists but cannot be read (permission denied); fix "
            "its permissions or copy the weights somewhere readable."
        )


def weights_source(model_name: str, pretrained) -> str:
    """What the weights of ``(model_name, pretrained)`` are, for people and for records:
    the resolved path of a local file or folder, the ``hf-hub:`` name, the open_clip tag,
    or ``"random"`` (``pretrained=None``). A ``local-dir:`` model ignores ``pretrained``:
    its folder is named, never the unused tag."""
    open_clip = import_open_clip()
    tags = known_tags(open_clip, model_name)
    _, _, kind, source = _resolve_source(model_name, pretrained, tags)
    return "random" if kind == "random" else str(source)


def load_bundle(params, *, stacklevel=5) -> ModelBundle:
    """Load the model of ``params`` = (model_name, pretrained, device, precision)."""
    model_name, pretrained, device_str, precision = params
    device = torch.device(device_str)
    check_tag_loadable(model_name, pretrained)  # before open_clip's import, seconds long
    open_clip = import_open_clip()
    tags = known_tags(open_clip, model_name)
    oc_name, oc_pretrained, kind, source = _resolve_source(model_name, pretrained, tags)
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
            RandomWeightsWarning,
            stacklevel=stacklevel,
        )
    if kind in ("tag", "hf-hub"):
        check_hub_reachable(open_clip, model_name, pretrained, kind)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            oc_name, pretrained=oc_pretrained, precision=precision, device=device
        )
    except (torch.cuda.OutOfMemoryError, MemoryError):
        raise
    except Exception as exc:
        if kind in ("tag", "hf-hub"):
            raise PretrainedWeightsError(
                f"Could not load pretrained={pretrained!r} for model_name={model_name!r} "
                f"({one_line(exc)}). " + weights_advice(model_name, pretrained, open_clip)
            ) from exc
        if kind in ("file", "local-dir"):
            error = _local_weights_error(model_name, kind, source, exc)
            if error is not None:
                raise error from exc
        raise
    model.eval()
    model.requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(oc_name)
    image_dtype = _input_dtype(model.visual)
    text_tower = text_tower_of(model, open_clip)
    if text_tower is None:
        logger.info(
            "%s: text tower not supported by the cut-context fast path; using encode_text",
            type(model).__name__,
        )
    with torch.inference_mode():
        probe = tokenizer(["a"]).to(device)
        embed_dim = int(model.encode_text(probe).shape[-1])
    return ModelBundle(
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


# --------------------------------------------------------------------------- clear errors


def _state_dict_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a state dict (tensors by name), or ``None`` if it can."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                keys = list(fh.keys())
            return None if keys else "it holds no tensors"
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            return f"it cannot be read as one: {one_line(exc)}"
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        return f"it holds a {type(state).__name__}, not tensors by name"
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "some of its values are not tensors"
    return None


def _local_weights_error(model_name, kind, source, exc) -> PretrainedWeightsError | None:
    """A one-line error for local weights that open_clip could not load, or ``None``.

    ``None`` (re-raise the original) when the file reads fine as a state dict and the
    failure does not look like a mismatch of architecture (e.g. a device error).
    """
    if kind == "local-dir":
        return PretrainedWeightsError(
            f"pretrained='local-dir:{source}' does not hold a loadable open_clip model "
            f"({one_line(exc)}). The folder must hold open_clip_config.json and the "
            "open_clip_model.safetensors saved with it."
        )
    advice = (
        f"Pass a state dict saved from an open_clip {model_name!r} model (.safetensors, .bin "
        "or .pt), the model_name of the architecture the file was saved from "
        "(open_clip.list_models()), or an open_clip tag such as 'openai'."
    )
    problem = _state_dict_problem(Path(source))
    if problem is not None:
        return PretrainedWeightsError(
            f"pretrained={source!r} is not an open_clip state dict ({problem}). {advice}"
        )
    mismatch = isinstance(exc, (KeyError, AssertionError)) or (
        isinstance(exc, RuntimeError) and "state_dict" in str(exc)
    )
    if not mismatch:
        return None
    return PretrainedWeightsError(
        f"pretrained={source!r} is not an open_clip state dict of model_name={model_name!r} "
        f"({one_line(exc)}). {advice}"
    )
