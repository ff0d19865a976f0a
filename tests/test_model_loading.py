"""Loading the model: bad local weights and unreachable tags fail at once, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from _clip_fixtures import TINY_CONFIG, TINY_NAME, register_tiny_config, tiny_weights_file

from skgradnorm._clip import _hub
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
    monkeypatch.setattr(_hub, "_PROBES", {})  # this test's own probe of the hub

    def forbidden(*args, **kwargs):
        raise AssertionError("open_clip was asked to load (download) the weights")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", forbidden)
    monkeypatch.setattr(
        "huggingface_hub.try_to_load_from_cache", lambda *args, **kwargs: None
    )  # nothing is cached, whatever this machine holds
    return open_clip


def _nothing_cached(monkeypatch, tmp_path):
    """No weights in the Hugging Face cache nor in open_clip's ~/.cache/clip."""
    from huggingface_hub import constants

    (tmp_path / "empty_hub").mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("cached", [False, True], ids=["nothing_cached", "other_weights_cached"])
def test_offline_tag_fails_at_once_with_the_advice(
    monkeypatch, no_open_clip_loading, tmp_path, cached
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Nothing cached: refused before open_clip is asked; else once it names the tag's files.
    (_some_weights_cached if cached else _nothing_cached)(monkeypatch, tmp_path)
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError) as info:
        enc.load_model()
    message = str(info.value)
    assert "HF_HUB_OFFLINE is set" in message and "not in the local Hugging Face cache" in message
    assert "local-dir:" in message and ".safetensors" in message and "\n" not in message
    assert time.perf_counter() - start < 30  # generous: the bug was ~70 s of retries


def test_nothing_cached_offline_fails_before_open_clip_is_imported(tmp_path):
    """The first run without network: the tag fails before the seconds-long open_clip import."""
    code = (
        "import sys, time\n"
        "from skgradnorm import CLIPEncoder\n"
        "from skgradnorm.exceptions import PretrainedWeightsError\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    CLIPEncoder('ViT-B-32', pretrained='openai', device='cpu').load_model()\n"
        "except PretrainedWeightsError as exc:\n"
        "    print('refused', 'open_clip' in sys.modules, 'HF_HUB_OFFLINE is set' in str(exc))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HOME=str(tmp_path))
    env["HF_HUB_CACHE"] = str(tmp_path / "hub")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.stdout.split() == ["refused", "False", "True"], out.stderr


def test_a_hub_that_does_not_answer_is_given_a_bounded_time(
    monkeypatch, no_open_clip_loading, tmp_path
):
    """Name resolution without network can hang for long: the probe is cut off."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_hub, "HUB_PROBE_TIMEOUT_S", 0.3)
    _nothing_cached(monkeypatch, tmp_path)

    class Silent:
        def head(self, url, timeout=None):
            time.sleep(30)  # a resolver that never answers (the thread is a daemon)

    monkeypatch.setattr("huggingface_hub.utils.get_session", lambda: Silent())
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError, match="no answer from .* within 0.3 s"):
        enc.load_model()
    assert time.perf_counter() - start < 10  # the probe's 0.3 s, not the resolver's 30 s


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
    assert len(probes) == 1 and probes[0][1] == _hub.HUB_PROBE_TIMEOUT_S
    # hf-hub: names are checked the same way
    enc = CLIPEncoder("hf-hub:org/some-clip", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="cannot be reached"):
        enc.load_model()


def _some_weights_cached(monkeypatch, tmp_path):
    """A Hugging Face cache that holds a model (so a tag may be cached)."""
    from huggingface_hub import constants

    (tmp_path / "hub" / "models--org--some-clip").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_cached_or_reachable_tags_go_on_to_open_clip(monkeypatch, no_open_clip_loading, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _some_weights_cached(monkeypatch, tmp_path)
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
