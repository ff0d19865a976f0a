"""Loading a CLIP model for :class:`~skgradnorm.CLIPEncoder`: architecture and weights.

The weights come from an open_clip pretrained tag, a local file, a local folder
(``local-dir:``) or the Hugging Face Hub (``hf-hub:``). Two things are checked so that a
wrong or missing file fails at once with one clear line:

* a tag (or ``hf-hub:`` name) whose files are not in the local Hugging Face cache fails
  immediately when ``HF_HUB_OFFLINE`` is set or the hub does not answer a short probe,
  instead of after open_clip's download retries (:func:`check_hub_reachable`);
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
from ._text import text_tower_of

__all__ = ["ModelBundle", "check_hub_reachable", "load_bundle"]

logger = logging.getLogger(__name__)

#: Seconds a probe of the Hugging Face Hub may take before the hub counts as unreachable.
HUB_PROBE_TIMEOUT_S = 5.0

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_LOCAL_DIR = "local-dir:"
_HF_HUB = "hf-hub:"


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


def load_bundle(params, *, stacklevel=5) -> ModelBundle:
    """Load the model of ``params`` = (model_name, pretrained, device, precision)."""
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
                f"({_one_line(exc)}). " + _weights_advice(model_name, pretrained, open_clip)
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


def _one_line(exc, limit=300) -> str:
    """``Type: message`` on one line: the first informative line of a long message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for CLIP:"
        text = f"{text} {lines[1]}"
        if len(lines) > 2:
            text += f" (and {len(lines) - 2} more)"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
            return f"it cannot be read as one: {_one_line(exc)}"
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
            f"({_one_line(exc)}). The folder must hold open_clip_config.json and the "
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
        f"({_one_line(exc)}). {advice}"
    )


# --------------------------------------------------------------------------- the hub


def _hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, also when set after its import."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip then uses the original URLs
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _hub_files(open_clip, model_name, pretrained, kind):
    """(repo id, candidate file names) that open_clip would fetch from the hub, or None."""
    if kind == "hf-hub":
        return model_name[len(_HF_HUB) :], ["open_clip_config.json"]
    try:
        cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    except Exception:  # pragma: no cover - defensive
        return None
    hub = cfg.get("hf_hub", "") if cfg else ""
    if not hub or "file" in cfg:
        return None  # unknown tag (open_clip fails fast) or a URL-only tag
    repo, filename = os.path.split(hub)
    filename = filename or "open_clip_pytorch_model.bin"
    names = [filename]
    if filename == "open_clip_pytorch_model.bin":
        names.insert(0, "open_clip_model.safetensors")
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo, names


def _probe_hub() -> str | None:
    """Why the hub cannot be reached (one short request, no retries), or ``None``."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session
    except ImportError:  # pragma: no cover
        return None
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception as exc:  # DNS, refused, timeout, proxy: the download would fail too
        return _one_line(exc)
    return None


def check_hub_reachable(open_clip, model_name, pretrained, kind) -> None:
    """Fail at once if a tag's files are not cached and cannot be downloaded.

    open_clip tries each candidate file with huggingface_hub's retries, which takes about
    a minute without network before failing. When none of the files is in the local
    Hugging Face cache, this raises :class:`PretrainedWeightsError` right away if
    ``HF_HUB_OFFLINE`` is set, or if one request to the hub with a
    ``HUB_PROBE_TIMEOUT_S`` timeout fails. Cached files and unknown tags pass through.
    """
    files = _hub_files(open_clip, model_name, pretrained, kind)
    if files is None:
        return
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover
        return
    repo, names = files
    for name in names:
        try:
            if isinstance(huggingface_hub.try_to_load_from_cache(repo, name), str):
                return
        except Exception:  # pragma: no cover - a damaged cache: let open_clip decide
            return
    what = f"pretrained={pretrained!r} for model_name={model_name!r} ({repo} on the Hub)"
    if kind == "hf-hub":
        what = f"model_name={model_name!r}"
    if _hub_offline():
        why = "HF_HUB_OFFLINE is set, so it cannot be downloaded"
    else:
        reason = _probe_hub()
        if reason is None:
            return
        why = f"the Hugging Face Hub cannot be reached ({reason})"
    raise PretrainedWeightsError(
        f"{what} is not in the local Hugging Face cache and {why}. "
        + _weights_advice(model_name, pretrained, open_clip)
    )
