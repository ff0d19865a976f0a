"""Loading the model: bad local weights and unreachable tags fail at once, in one line."""

from __future__ import annotations

import os
import time

import pytest
import torch
from _clip_fixtures import TINY_CONFIG, TINY_NAME, register_tiny_config, tiny_weights_file

from skgradnorm._clip import _model as _clip_model
from skgradnorm._clip._encoder import CLIPEncoder
from skgradnorm.exceptions import PretrainedWeightsError

OTHER_NAME = "skgradnorm-tiny-other"


def _bad_weights(kind, folder):
    path = folder / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path = folder / "text.bin"
        path.write_text("hello, I am not a tensor")
    elif kind == "garbage_safetensors":
        path = folder / "garbage.safetensors"
        path.write_bytes(os.urandom(4096))
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "other_architecture":
        open_clip = register_tiny_config()
        open_clip.factory._MODEL_CONFIGS[OTHER_NAME] = dict(TINY_CONFIG, embed_dim=48)
        torch.save(open_clip.create_model(OTHER_NAME).state_dict(), path)
    elif kind == "missing_key":
        state = torch.load(tiny_weights_file(), weights_only=True)
        del state["logit_scale"]
        torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "empty",
        "text",
        "garbage_safetensors",
        "list",
        "other_architecture",
        "missing_key",
    ],
)
def test_bad_weights_file_is_one_clear_line(tmp_path, kind):
    register_tiny_config()
    path = _bad_weights(kind, tmp_path)
    enc = CLIPEncoder(TINY_NAME, pretrained=str(path), device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError) as info:
        enc.load_model()
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "is not an open_clip state dict" in message
    assert "model_name" in message and "open_clip.list_models()" in message
    if kind in ("other_architecture", "missing_key"):
        assert f"of model_name={TINY_NAME!r}" in message


def test_good_weights_still_load(tiny_weights):
    register_tiny_config()
    enc = CLIPEncoder(TINY_NAME, pretrained=tiny_weights, device="cpu", cache_dir=False)
    assert enc.load_model() is enc and enc._model_bundle.embed_dim == 32


def test_bad_local_dir_is_one_clear_line(tmp_path):
    (tmp_path / "open_clip_config.json").write_text("{not json")
    (tmp_path / "open_clip_model.safetensors").write_bytes(os.urandom(100))
    enc = CLIPEncoder(pretrained=f"local-dir:{tmp_path}", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="does not hold a loadable open_clip model"):
        enc.load_model()


@pytest.fixture
def no_open_clip_loading(monkeypatch):
    """Fail the test if open_clip starts loading (and so downloading) the model."""
    from skgradnorm._utils._compat import import_open_clip

    open_clip = import_open_clip()

    def forbidden(*args, **kwargs):
        raise AssertionError("open_clip was asked to load (download) the weights")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", forbidden)
    monkeypatch.setattr(
        "huggingface_hub.try_to_load_from_cache", lambda *args, **kwargs: None
    )  # nothing is cached, whatever this machine holds
    return open_clip


def test_offline_tag_fails_at_once_with_the_advice(monkeypatch, no_open_clip_loading):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError) as info:
        enc.load_model()
    message = str(info.value)
    assert "HF_HUB_OFFLINE is set" in message and "not in the local Hugging Face cache" in message
    assert "local-dir:" in message and ".safetensors" in message and "\n" not in message
    assert time.perf_counter() - start < 30  # generous: the bug was ~70 s of retries


def test_unreachable_hub_fails_at_once(monkeypatch, no_open_clip_loading):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []

    class Unreachable:
        def head(self, url, timeout=None):
            probes.append((url, timeout))
            raise ConnectionError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.utils.get_session", lambda: Unreachable())
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="cannot be reached.*Name or service"):
        enc.load_model()
    assert len(probes) == 1 and probes[0][1] == _clip_model.HUB_PROBE_TIMEOUT_S
    # hf-hub: names are checked the same way
    enc = CLIPEncoder("hf-hub:org/some-clip", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="cannot be reached"):
        enc.load_model()


def test_cached_or_reachable_tags_go_on_to_open_clip(monkeypatch, no_open_clip_loading):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = []
    monkeypatch.setattr(
        "huggingface_hub.try_to_load_from_cache",
        lambda repo, name, **kw: seen.append((repo, name)) or "/cached/file",
    )
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="Could not load") as info:
        enc.load_model()  # open_clip was called (and refused by the fixture)
    assert "open_clip was asked" in str(info.value.__cause__)
    assert seen and seen[0][1] == "open_clip_model.safetensors"
