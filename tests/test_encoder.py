"""Tests of CLIPEncoder on a tiny random open_clip model (offline, CPU)."""

from __future__ import annotations

import importlib
import json
import pickle
import sys

import numpy as np
import pytest
import torch
from _clip_fixtures import (
    TINY_CONFIG,
    TINY_NAME,
    load_reference_model,
    make_tiny_encoder,
    random_image,
    register_tiny_config,
    tiny_weights_file,
)
from conftest import has_unit_rows
from PIL import Image
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skgradnorm._clip._encoder import PAPER_TEMPLATES, CLIPEncoder
from skgradnorm._clip._text import encode_prompts, text_tower_of
from skgradnorm._utils import _compat
from skgradnorm._utils._torch import run_with_oom_backoff
from skgradnorm.exceptions import (
    PretrainedWeightsError,
    RandomWeightsWarning,
    UnreadableImageError,
)

ATOL = 1e-6


# --------------------------------------------------------------------------- images


def test_image_input_forms_give_the_same_embedding(tiny_encoder, tmp_path):
    rgb = random_image(0)
    other = random_image(1)
    path = tmp_path / "pic.png"
    Image.fromarray(rgb).save(path)

    inputs = [
        [str(path)],
        [path],
        [Image.fromarray(rgb)],
        [rgb],
        rgb,  # one H x W x 3 array
        np.stack([rgb, other]),  # N x H x W x C batch
        [str(path), Image.fromarray(other)],
    ]
    outs = [tiny_encoder.transform(x) for x in inputs]
    ref = outs[0][0]
    for out in outs:
        assert out.dtype == np.float32 and out.shape[1] == 32 and has_unit_rows(out)
        np.testing.assert_allclose(out[0], ref, atol=ATOL)
    assert outs[5].shape == (2, 32)
    np.testing.assert_allclose(outs[5][1], outs[6][1], atol=ATOL)
    assert not np.allclose(outs[5][0], outs[5][1])


def test_grayscale_alpha_palette_cmyk_are_converted_to_rgb(tiny_encoder, tmp_path):
    gray = random_image(2)[:, :, 0]
    gray_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    forms = tiny_encoder.transform(
        [gray_rgb, gray, gray[:, :, None], Image.fromarray(gray), tmp_path / "gray.png"]
    )
    batch = tiny_encoder.transform(np.stack([gray, gray])[..., None])  # N x H x W x 1
    for row in list(forms) + list(batch):
        np.testing.assert_allclose(row, forms[0], atol=ATOL)

    rgb = random_image(3)
    alpha = np.random.default_rng(3).integers(0, 256, size=rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = tiny_encoder.transform(
        [rgb, rgba, Image.fromarray(rgba, mode="RGBA"), tmp_path / "rgba.png"]
    )
    for row in out:
        np.testing.assert_allclose(row, out[0], atol=ATOL)

    pal = Image.fromarray(rgb).convert("P")
    cmyk = Image.fromarray(rgb).convert("CMYK")
    out = tiny_encoder.transform(
        [pal, np.asarray(pal.convert("RGB")), cmyk, np.asarray(cmyk.convert("RGB"))]
    )
    np.testing.assert_allclose(out[0], out[1], atol=ATOL)
    np.testing.assert_allclose(out[2], out[3], atol=ATOL)


def test_transform_rejects_bad_inputs(tiny_encoder, tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        tiny_encoder.transform([np.zeros((8, 8, 3), dtype=np.float32)])
    with pytest.raises(TypeError, match="list"):
        tiny_encoder.transform(str(tmp_path / "a.png"))
    with pytest.raises(ValueError, match="empty"):
        tiny_encoder.transform([])
    with pytest.raises(TypeError, match=r"X\[1\]"):
        tiny_encoder.transform([random_image(0), 3])
    with pytest.raises(ValueError, match="shape"):
        tiny_encoder.transform([np.zeros((4, 4, 2), dtype=np.uint8)])


@pytest.mark.slow
def test_arrays_of_file_names_and_half_precision(tiny_encoder, tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(random_image(i)).save(paths[-1])
    expected = tiny_encoder.transform(paths)
    names = np.array([str(p) for p in paths])
    np.testing.assert_array_equal(tiny_encoder.transform(names), expected)
    np.testing.assert_array_equal(tiny_encoder.transform(names.astype(object)), expected)
    half = make_tiny_encoder(precision="fp16")
    out = half.transform(paths)
    assert out.dtype == np.float32 and has_unit_rows(out)
    np.testing.assert_allclose(out, expected, atol=5e-3)
    np.testing.assert_allclose(
        half.encode_texts(PROMPTS), tiny_encoder.encode_texts(PROMPTS), atol=5e-3
    )


def test_unreadable_files_are_all_listed_in_one_error(tiny_encoder, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(random_image(0)).save(good)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all" * 10)
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(random_image(1, size=(64, 64))).save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:300])  # header fine, pixels cut off
    missing = tmp_path / "missing.png"

    with pytest.raises(UnreadableImageError) as info:
        tiny_encoder.transform([good, garbage, truncated, missing])
    err = info.value
    assert isinstance(err, ValueError)
    names = [name for name, _ in err.failures]
    assert names == [str(garbage), str(truncated), str(missing)]
    message = str(err)
    assert "3 image(s)" in message and "good.png" not in message

    # Files that pass verify() but fail to decode are collected while embedding.
    with pytest.raises(UnreadableImageError) as info:
        tiny_encoder.transform([truncated, good, truncated])
    assert [n for n, _ in info.value.failures] == [str(truncated), str(truncated)]


def test_image_worker_processes_give_the_same_result(tiny_weights, tmp_path):
    images = [random_image(i) for i in range(5)]
    serial = make_tiny_encoder(batch_size=2).transform(images)
    parallel = make_tiny_encoder(batch_size=2, num_workers=2).transform(images)
    np.testing.assert_allclose(serial, parallel, atol=ATOL)


def test_matches_open_clip_image_embedding(tiny_encoder):
    model, preprocess, _ = load_reference_model()
    images = [random_image(i) for i in range(3)]
    with torch.inference_mode():
        x = torch.stack([preprocess(Image.fromarray(im)) for im in images])
        ref = torch.nn.functional.normalize(model.encode_image(x), dim=-1).numpy()
    np.testing.assert_allclose(tiny_encoder.transform(images), ref, atol=1e-5)


# --------------------------------------------------------------------------- texts


PROMPTS = [
    "a",
    "",
    "a photo of a dog.",
    "itap of a hot dog.",
    "a bad photo of the 's gravenhage.",
    "an extraordinarily long prompt about a very particular kind of sea creature that "
    "lives near hydrothermal vents and eats bacteria",
    "x " * 120,  # longer than the context: truncated by the tokenizer
    "a photo of the small cat.",
    "art of the Ödön-von-Horváth-Straße.",
]


def test_encode_texts_matches_open_clip(tiny_encoder):
    model, _, tokenizer = load_reference_model()
    out = tiny_encoder.encode_texts(PROMPTS)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(model.encode_text(tokenizer(PROMPTS)), dim=-1)
    assert out.shape == (len(PROMPTS), 32) and out.dtype == np.float32 and has_unit_rows(out)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5)


def test_cut_context_text_path_is_exact(monkeypatch):
    """The fast path (sorted, batched, cut) equals open_clip's encode_text on 77 tokens."""
    enc = make_tiny_encoder(text_batch_size=3)
    bundle = enc._get_bundle()
    tower = bundle.text_tower
    assert tower is not None and tower.standard_blocks
    widths, batches = [], []
    real_embed, real_forward = type(tower)._embed, type(tower).forward

    def spy_embed(self, tokens, positions):
        widths.append(tokens.shape[1])
        return real_embed(self, tokens, positions)

    def spy_forward(self, tokens, *args):
        batches.append(tokens.shape[0])
        return real_forward(self, tokens, *args)

    monkeypatch.setattr(type(tower), "_embed", spy_embed)
    monkeypatch.setattr(type(tower), "forward", spy_forward)
    rng = np.random.default_rng(0)
    prompts = list(PROMPTS) + [" ".join(["word"] * int(k)) for k in rng.integers(1, 40, size=12)]
    raw = encode_prompts(bundle, prompts, batch_size=enc.text_batch_size)
    model, _, tokenizer = load_reference_model()
    with torch.inference_mode():
        ref = model.encode_text(tokenizer(prompts)).numpy()
    assert np.abs(raw - ref).max() < 1e-5
    # The start token is computed once (width 1); batches are cut far below 77 tokens,
    # except the one holding the prompt that fills the context (76 after the start token).
    assert widths[0] == 1 and min(widths[1:]) < 10 and max(widths) == 76
    assert max(batches) <= 3 and sum(batches) == len(prompts)


@pytest.mark.slow
@pytest.mark.parametrize("standard_blocks", [True, False])
def test_prefix_sharing_and_plain_cut_paths_are_exact(monkeypatch, standard_blocks):
    """Template groups (shared prefix computed once) and the plain cut path are exact."""
    enc = make_tiny_encoder(text_batch_size=5)
    bundle = enc._get_bundle()
    assert bundle.text_tower.standard_blocks
    monkeypatch.setattr(bundle.text_tower, "standard_blocks", standard_blocks)
    nouns = ["dog", "hot dog", "a", "'s gravenhage", "x " * 80, "sea  cucumber", "ox"]
    templates = list(PAPER_TEMPLATES) + ["{}", "{} is here"]
    prompts = [t.format(n) for n in nouns for t in templates]
    groups = [np.arange(j, len(prompts), len(templates)) for j in range(len(templates))]
    prefixes = []
    real_prefix_set = type(bundle.text_tower).prefix_set

    def spy(self, pieces):
        prefixes.extend(int(p.shape[0]) for p in pieces)
        return real_prefix_set(self, pieces)

    monkeypatch.setattr(type(bundle.text_tower), "prefix_set", spy)
    raw = encode_prompts(bundle, prompts, groups=groups, batch_size=enc.text_batch_size)
    model, _, tokenizer = load_reference_model()
    with torch.inference_mode():
        ref = model.encode_text(tokenizer(prompts)).numpy()
    assert np.abs(raw - ref).max() < 1e-5
    if standard_blocks:
        # One prefix per template: "a photo of the large" is long, "{}" only the start token.
        assert len(prefixes) == len(templates)
        assert max(prefixes) >= 5 and min(prefixes) == 1
    else:
        assert prefixes == []


def test_batch_planning_and_shared_prefix():
    from skgradnorm._clip._text import _plan_batches, _shared_prefix_length

    lengths = sorted([3] * 40 + [4] * 30 + [9] * 5 + [20] * 50)
    for max_rows in (1, 7, 64, 1000):
        batches = _plan_batches(lengths, max_rows)
        assert batches[0][0] == 0 and batches[-1][1] == len(lengths)
        assert all(a < b and b - a <= max_rows for a, b in batches)
        assert all(b1 == a2 for (_, b1), (a2, _) in zip(batches, batches[1:], strict=False))
    big = _plan_batches(lengths, 1000)
    assert len(big) >= 3  # the 20-token prompts are not padded together with the short ones
    tokens = torch.tensor([[5, 6, 7, 9, 0], [5, 6, 8, 9, 0], [5, 6, 7, 7, 9]])
    assert _shared_prefix_length(tokens, torch.tensor([3, 3, 4])) == 2
    assert _shared_prefix_length(tokens[:1], torch.tensor([3])) == 3  # stops before pooling


@pytest.mark.parametrize("variant", ["custom_text", "no_causal_mask"])
def test_text_tower_variants(variant):
    """CustomTextCLIP is on the fast path; a bidirectional text tower falls back."""
    open_clip = register_tiny_config()
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["custom_text"] = True
    if variant == "no_causal_mask":
        cfg["text_cfg"]["no_causal_mask"] = True
    name = f"{TINY_NAME}-{variant}"
    open_clip.factory._MODEL_CONFIGS[name] = cfg
    torch.manual_seed(1)
    model = open_clip.create_model(name, pretrained=None)
    model.eval()
    assert type(model).__name__ == "CustomTextCLIP"
    tower = text_tower_of(model, open_clip)
    if variant == "no_causal_mask":
        assert tower is None
        return
    assert tower.standard_blocks
    tokenizer = open_clip.get_tokenizer(name)
    tokens = tokenizer(PROMPTS)
    with torch.inference_mode():
        ref = model.encode_text(tokens)
        idx = tower.pool_index(tokens)
        assert (tower.forward(tokens, idx) - ref).abs().max() < 1e-5
        # Two prefixes of different lengths, rows mixed in one batch.
        prefix = tower.prefix_set([tokens[0, :1], tokens[2, :4]])  # <start>, <start> a photo of
        ids = torch.tensor([0 if i != 2 else 1 for i in range(len(PROMPTS))])
        assert (tower.forward(tokens, idx, prefix, ids) - ref).abs().max() < 1e-5


def test_fallback_text_path_is_used_when_fast_path_unsupported(monkeypatch):
    enc = make_tiny_encoder()
    bundle = enc._get_bundle()
    expected = enc.encode_texts(PROMPTS)
    monkeypatch.setattr(bundle, "text_tower", None)
    np.testing.assert_allclose(enc.encode_texts(PROMPTS), expected, atol=1e-5)


def test_encode_nouns_is_the_template_ensemble(tmp_path):
    model, _, tokenizer = load_reference_model()
    nouns = ["dog", "hot dog", "'s gravenhage", "cat"]

    def manual(templates):
        rows = []
        with torch.inference_mode():
            for noun in nouns:
                raw = model.encode_text(tokenizer([t.format(noun) for t in templates]))
                rows.append(torch.nn.functional.normalize(raw.mean(0), dim=-1).numpy())
        return np.stack(rows)

    enc = make_tiny_encoder(cache_dir=tmp_path)
    out = enc.encode_nouns(nouns)
    assert out.shape == (4, 32) and out.dtype == np.float32 and has_unit_rows(out)
    np.testing.assert_allclose(out, manual(PAPER_TEMPLATES), atol=1e-5)
    # Averaging raw embeddings is not the same as averaging normalised ones.
    templates = ["a photo of a {}.", "{}"]
    out2 = make_tiny_encoder(cache_dir=False, templates=templates).encode_nouns(nouns)
    np.testing.assert_allclose(out2, manual(templates), atol=1e-5)


def test_encode_inputs_are_validated(tiny_encoder):
    with pytest.raises(TypeError, match="one string"):
        tiny_encoder.encode_texts("a dog")
    with pytest.raises(ValueError, match="empty"):
        tiny_encoder.encode_nouns([])
    with pytest.raises(TypeError, match=r"nouns\[1\]"):
        tiny_encoder.encode_nouns(["dog", 3])
    for bad in (["no placeholder"], "a {}", ["{} and {}"], []):
        with pytest.raises(ValueError, match="template"):
            make_tiny_encoder(templates=bad).encode_nouns(["dog"])


# --------------------------------------------------------------------------- out of memory


def test_oom_backoff_halves_the_batch_and_keeps_order():
    calls = []

    def fn(batch):
        calls.append(len(batch))
        if len(batch) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return [x * 10 for x in batch]

    outputs, final = run_with_oom_backoff(fn, list(range(11)), 8)
    assert [x for part in outputs for x in part] == [x * 10 for x in range(11)]
    assert final == 2
    assert calls[:3] == [8, 4, 2]

    def always(batch):
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_with_oom_backoff(always, [1, 2, 3], 4)

    def other(batch):
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        run_with_oom_backoff(other, [1, 2, 3], 4)


def test_encoder_survives_simulated_oom(monkeypatch, tmp_path):
    enc = make_tiny_encoder(text_batch_size=8, batch_size=4)
    expected_text = enc.encode_texts(PROMPTS)
    images = [random_image(i) for i in range(5)]
    expected_img = enc.transform(images)
    bundle = enc._get_bundle()
    tower_cls = type(bundle.text_tower)
    real_text = tower_cls.forward
    real_image = type(bundle.model).encode_image

    def small_text(self, tokens, *args):
        if tokens.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_text(self, tokens, *args)

    def small_image(self, images, *a, **k):
        if images.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_image(self, images, *a, **k)

    monkeypatch.setattr(tower_cls, "forward", small_text)
    monkeypatch.setattr(type(bundle.model), "encode_image", small_image)
    np.testing.assert_allclose(enc.encode_texts(PROMPTS), expected_text, atol=1e-5)
    np.testing.assert_allclose(enc.transform(images), expected_img, atol=1e-5)


# --------------------------------------------------------------------------- loading


def test_pretrained_tag_that_cannot_load_says_how_to_use_local_weights(monkeypatch):
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    enc = CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError) as info:
        enc.encode_texts(["a dog"])
    message = str(info.value)
    assert "local-dir:" in message and ".safetensors" in message and "openai" in message

    register_tiny_config()
    enc = CLIPEncoder(TINY_NAME, pretrained="no-such-tag", device="cpu", cache_dir=False)
    with pytest.raises(PretrainedWeightsError, match="local-dir:"):
        enc.transform([random_image(0)])


def test_bad_paths_and_names_are_reported(tmp_path):
    register_tiny_config()
    with pytest.raises(FileNotFoundError, match="no such file"):
        CLIPEncoder(
            TINY_NAME, pretrained=str(tmp_path / "w.safetensors"), device="cpu"
        ).encode_texts(["a"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CLIPEncoder(
            TINY_NAME, pretrained=f"local-dir:{tmp_path / 'nope'}", device="cpu"
        ).encode_texts(["a"])
    with pytest.raises(ValueError, match="empty string"):
        CLIPEncoder(TINY_NAME, pretrained="", device="cpu").encode_texts(["a"])
    with pytest.raises(ValueError, match="not an open_clip architecture"):
        CLIPEncoder("ViT-B-33", pretrained=tiny_weights_file(), device="cpu").encode_texts(["a"])


def test_local_dir_and_safetensors_weights(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = torch.load(tiny_weights_file(), weights_only=True)
    folder = tmp_path / "tiny"
    folder.mkdir()
    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in state.items()}, folder / "open_clip_model.safetensors"
    )
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": {}})
    )
    expected = make_tiny_encoder().encode_texts(PROMPTS[:3])
    for pretrained in (f"local-dir:{folder}", str(folder), folder):
        enc = CLIPEncoder("ignored", pretrained=pretrained, device="cpu", cache_dir=False)
        np.testing.assert_allclose(enc.encode_texts(PROMPTS[:3]), expected, atol=1e-6)
    enc = CLIPEncoder(
        TINY_NAME, pretrained=folder / "open_clip_model.safetensors", device="cpu", cache_dir=False
    )
    np.testing.assert_allclose(enc.encode_texts(PROMPTS[:3]), expected, atol=1e-6)


def test_random_weights_warn():
    register_tiny_config()
    enc = CLIPEncoder(TINY_NAME, pretrained=None, device="cpu", cache_dir=False)
    with pytest.warns(RandomWeightsWarning, match="random weights"):
        assert enc.encode_texts(["a"]).shape == (1, 32)


# --------------------------------------------------------------------------- sklearn protocol


def test_fit_loads_nothing_and_tags(tiny_weights):
    enc = make_tiny_encoder()
    assert enc.fit() is enc and enc.fit(["a.png"], [1]) is enc
    assert not hasattr(enc, "_model_bundle")
    tags = enc.__sklearn_tags__()
    assert tags.requires_fit is False and tags.input_tags.two_d_array is False
    X = [random_image(0)]
    np.testing.assert_allclose(enc.fit_transform(X), make_tiny_encoder().transform(X), atol=ATOL)
    assert enc.get_feature_names_out()[:2].tolist() == ["clipencoder0", "clipencoder1"]
    with pytest.raises(ValueError, match="no input feature names"):
        enc.get_feature_names_out(["r", "g", "b"])
    with pytest.raises(InvalidParameterError):
        make_tiny_encoder(batch_size=0).fit()
    with pytest.raises(InvalidParameterError):
        make_tiny_encoder(precision="fp64").transform(X)


def test_pickle_drops_the_model_and_reloads_it(tiny_encoder):
    X = [random_image(0), random_image(1)]
    before = tiny_encoder.transform(X)
    texts = tiny_encoder.encode_texts(PROMPTS[:3])
    bundle = tiny_encoder._model_bundle
    blob = pickle.dumps(tiny_encoder)
    assert len(blob) < 4096  # the tiny model alone is > 100 kB
    assert tiny_encoder._model_bundle is bundle  # pickling left the live encoder alone
    restored = pickle.loads(blob)
    assert not hasattr(restored, "_model_bundle")
    assert restored.get_params() == tiny_encoder.get_params()
    np.testing.assert_array_equal(restored.transform(X), before)
    np.testing.assert_array_equal(restored.encode_texts(PROMPTS[:3]), texts)


def test_clone_and_set_params(tiny_encoder):
    X = [random_image(0)]
    before = tiny_encoder.transform(X)
    cloned = clone(tiny_encoder)
    assert not hasattr(cloned, "_model_bundle")
    assert cloned.get_params() == tiny_encoder.get_params()
    np.testing.assert_array_equal(cloned.transform(X), before)
    bundle = cloned._model_bundle
    cloned.set_params(batch_size=3, verbose=False)
    cloned.transform(X)
    assert cloned._model_bundle is bundle  # loading parameters unchanged: model kept
    cloned.set_params(precision="bf16")
    out = cloned.transform(X)
    assert cloned._model_bundle is not bundle and cloned._model_bundle.precision == "bf16"
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, before, atol=0.1)


def test_verbose_shows_progress(capsys):
    enc = make_tiny_encoder(verbose=True)
    enc.encode_texts(["a", "b"])
    enc.transform([random_image(0)])
    enc.encode_nouns(["dog", "cat", "cow"])
    err = capsys.readouterr().err
    assert "Embedding texts" in err and "Embedding images" in err
    assert "Embedding nouns" in err and "3/3" in err
    make_tiny_encoder().encode_texts(["a"])
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- torchvision guard


def test_import_open_clip_does_nothing_when_torchvision_imports():
    _compat.import_open_clip()  # imported once for real (this machine needs the guard)
    calls = []
    module = _compat.import_open_clip(guard=lambda: calls.append(1))
    assert module is sys.modules["open_clip"] and calls == []


def test_import_open_clip_guard_only_for_the_torchvision_operator_error():
    _compat.import_open_clip()  # imported once for real (this machine needs the guard)
    state = {"guarded": False, "calls": 0}

    def fake_guard():
        state["guarded"] = True

    def importer(name):  # fails as a CUDA torchvision next to a CPU torch does, until guarded
        state["calls"] += 1
        if not state["guarded"]:
            raise RuntimeError(state["message"])
        return importlib.import_module(name)

    state["message"] = "operator torchvision::nms does not exist"
    assert _compat.import_open_clip(importer=importer, guard=fake_guard) is sys.modules["open_clip"]
    assert state == {"guarded": True, "calls": 2, "message": state["message"]}

    state.update(guarded=False, calls=0, message="CUDA driver too old")
    with pytest.raises(RuntimeError, match="CUDA driver"):
        _compat.import_open_clip(importer=importer, guard=fake_guard)
    assert state["guarded"] is False and state["calls"] == 1
    assert _compat.is_torchvision_operator_error(
        RuntimeError("operator torchvision::roi_align does not exist")
    )
