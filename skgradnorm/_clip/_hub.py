"""The Hugging Face Hub, where open_clip's tagged weights come from: fail at once when they
can be neither read from a cache nor downloaded.

* :func:`check_tag_loadable` runs before open_clip is imported (which takes seconds):
  when this machine holds no open_clip weights at all and the hub cannot be reached, no
  tag can load, and the error comes in well under a second;
* :func:`check_hub_reachable` runs once open_clip says which files a tag needs: when none
  of them is in the local Hugging Face cache, it fails at once if ``HF_HUB_OFFLINE`` is
  set or the hub does not answer one short probe, instead of after open_clip's download
  retries (about a minute).

The probe is made once per process and bounded in wall time (:data:`HUB_PROBE_TIMEOUT_S`,
name resolution included). The one-line error helpers shared with ``_model.py`` live
here too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..exceptions import PretrainedWeightsError

__all__ = [
    "HF_HUB",
    "HUB_PROBE_TIMEOUT_S",
    "LOCAL_DIR",
    "check_hub_reachable",
    "check_tag_loadable",
    "known_tags",
    "looks_like_path",
    "one_line",
    "weights_advice",
]

#: Seconds a probe of the Hugging Face Hub may take, name resolution included, before the
#: hub counts as unreachable (the probe is made once per process).
HUB_PROBE_TIMEOUT_S = 2.0

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(("~", "."))
        or value.lower().endswith(_WEIGHT_SUFFIXES)
    )


def one_line(exc, limit=300) -> str:
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


def known_tags(open_clip, model_name: str) -> list:
    """open_clip's pretrained tags for ``model_name`` ([] without open_clip, or for a name
    it cannot list, such as ``hf-hub:`` and ``local-dir:`` names)."""
    if open_clip is None:
        return []
    try:
        return list(open_clip.list_pretrained_tags_by_model(model_name))
    except Exception:  # pragma: no cover - defensive (names with schemas)
        return []


def weights_advice(model_name: str, pretrained, open_clip=None, *, cli: bool = False) -> str:
    """How to get weights without network, in the Python API's words (or the CLI's)."""
    tags = known_tags(open_clip, model_name)
    known = f" Known tags for {model_name!r}: {', '.join(tags)}." if tags else ""
    return (
        "open_clip fetches tagged weights from the Hugging Face Hub (or the original URLs), "
        "which needs network access (and HF_HUB_OFFLINE unset) unless they are already in its "
        "cache. Without network, copy the weights to this machine and pass them locally: "
        + (
            f"--model {model_name} --pretrained /path/to/open_clip_model.safetensors "
            if cli
            else f"CLIPEncoder(model_name={model_name!r}, "
            "pretrained='/path/to/open_clip_model.safetensors') "
        )
        + "(a .safetensors, .bin or .pt state dict of this architecture), or "
        + (
            "--pretrained local-dir:/path/to/folder"
            if cli
            else "pretrained='local-dir:/path/to/folder'"
        )
        + " (a folder holding open_clip_config.json and "
        f"open_clip_model.safetensors).{known}"
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
        return model_name[len(HF_HUB) :], ["open_clip_config.json"]
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


_PROBES: dict = {}  # endpoint -> why it cannot be reached, or None: one probe per process


def _probe_hub() -> str | None:
    """Why the hub cannot be reached (one short request, no retries), or ``None``.

    The request runs in a thread that is given :data:`HUB_PROBE_TIMEOUT_S` in all: the
    request's own timeout does not cover name resolution, which without network can
    take many seconds. The answer is kept for the rest of the process.
    """
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip then uses the original URLs
        return None
    endpoint = constants.ENDPOINT
    if endpoint not in _PROBES:
        outcome = {}

        def probe():
            try:
                from huggingface_hub.utils import get_session

                get_session().head(endpoint, timeout=HUB_PROBE_TIMEOUT_S)
                outcome["why"] = None
            except Exception as exc:  # DNS, refused, timeout, proxy: a download fails too
                outcome["why"] = one_line(exc)

        thread = threading.Thread(target=probe, name="skgradnorm-hub-probe", daemon=True)
        thread.start()
        thread.join(HUB_PROBE_TIMEOUT_S)
        why = outcome.get("why", f"no answer from {endpoint} within {HUB_PROBE_TIMEOUT_S:g} s")
        _PROBES[endpoint] = why if "why" not in outcome or outcome["why"] else None
    return _PROBES[endpoint]


def _hub_unreachable() -> str | None:
    """Why nothing can be downloaded from the hub now (offline, or no answer), or None."""
    if _hub_offline():
        return "HF_HUB_OFFLINE is set, so it cannot be downloaded"
    reason = _probe_hub()
    return None if reason is None else f"the Hugging Face Hub cannot be reached ({reason})"


def _weights_cached_anywhere() -> bool:
    """Whether any model could be in the caches open_clip loads tags from: the Hugging Face
    cache (any ``models--*`` folder) or open_clip's own ``~/.cache/clip``."""
    try:
        from huggingface_hub import constants

        hub_cache = Path(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return True
    try:
        if any(p.name.startswith("models--") for p in hub_cache.iterdir()):
            return True
    except OSError:
        pass
    clip_cache = Path(os.path.expanduser("~/.cache/clip"))
    try:
        return any(clip_cache.iterdir())
    except OSError:
        return False


def check_tag_loadable(model_name, pretrained, *, cli: bool = False) -> None:
    """Fail at once, before open_clip is imported, when a pretrained tag cannot be loaded.

    A tag's weights come from the hub, or from the local caches. When this machine holds
    no open_clip weights at all (no model in the Hugging Face cache, nothing in
    ``~/.cache/clip``) and the hub cannot be reached (``HF_HUB_OFFLINE``, or no answer to
    one probe), no tag can load: this raises :class:`PretrainedWeightsError` with the
    ways out, in well under a second, instead of after the import of open_clip (seconds)
    and its download retries. Anything else (a local file or folder, ``hf-hub:`` names,
    ``None``, or some weights cached) passes, for :func:`check_hub_reachable` to decide
    once open_clip knows which files the tag needs.
    """
    if pretrained is None or model_name.startswith((LOCAL_DIR, HF_HUB)):
        return
    text = os.fspath(pretrained)
    if not text.strip() or text.startswith(LOCAL_DIR) or looks_like_path(text):
        return
    try:
        if Path(text).expanduser().exists():
            return  # a local file named like a tag
    except (OSError, RuntimeError, ValueError):
        return
    if _weights_cached_anywhere():
        return
    why = _hub_unreachable()
    if why is None:
        return
    raise PretrainedWeightsError(
        f"pretrained={text!r} for model_name={model_name!r} is not in the local Hugging Face "
        f"cache (no open_clip weights are cached on this machine) and {why}. "
        + weights_advice(model_name, text, cli=cli)
    )


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
    why = _hub_unreachable()
    if why is None:
        return
    raise PretrainedWeightsError(
        f"{what} is not in the local Hugging Face cache and {why}. "
        + weights_advice(model_name, pretrained, open_clip)
    )
