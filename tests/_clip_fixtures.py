"""Shared helpers and fixtures for the CLIP encoder tests: a tiny open_clip model, offline.

Test modules import these helpers with ``from _clip_fixtures import ...`` (pytest's default
``prepend`` import mode puts this folder on ``sys.path``); the fixtures built on them
(``tiny_weights``, ``tiny_encoder``, ``reference_model``) are defined once, in
``conftest.py``. Nothing is downloaded:
the tiny architecture is registered in open_clip's config table at test time, built with
random weights and saved to a temporary weights file, which the encoder loads through its
local-weights path.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

# Never let open_clip / huggingface_hub try the network (set before they are imported).
os.environ["HF_HUB_OFFLINE"] = "1"

TINY_NAME = "skgradnorm-tiny"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 4,
        "layers": 2,
    },
}


def open_clip_module():
    from skgradnorm._utils._compat import import_open_clip

    return import_open_clip()


def register_tiny_config():
    """Register the tiny architecture with open_clip (idempotent) and return open_clip."""
    open_clip = open_clip_module()
    open_clip.factory._MODEL_CONFIGS[TINY_NAME] = dict(TINY_CONFIG)
    return open_clip


@functools.cache
def tiny_weights_file() -> str:
    """Path of a saved random state dict of the tiny model (made once per process)."""
    import torch

    open_clip = register_tiny_config()
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_NAME, pretrained=None)
    folder = tempfile.mkdtemp(prefix="skgradnorm-tiny-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "tiny_open_clip.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def load_reference_model():
    """The tiny model loaded by open_clip itself from the same weights (eval mode)."""
    open_clip = register_tiny_config()
    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_NAME, pretrained=tiny_weights_file(), device="cpu"
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(TINY_NAME)


def make_tiny_encoder(cache_dir=False, **params):
    from skgradnorm._clip._encoder import CLIPEncoder

    register_tiny_config()
    params.setdefault("device", "cpu")
    params.setdefault("verbose", False)  # the default, said again: test logs stay quiet
    return CLIPEncoder(
        model_name=TINY_NAME, pretrained=tiny_weights_file(), cache_dir=cache_dir, **params
    )


def random_image(seed=0, size=(40, 48)) -> np.ndarray:
    """A random H x W x 3 uint8 picture."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
