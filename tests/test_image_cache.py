"""Image embeddings are cached by file content and model; saved embeddings round-trip."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
from _clip_fixtures import make_tiny_encoder, random_image
from PIL import Image

from skgradnorm._clip import _encoder, _image_cache
from skgradnorm._clip._embedding_files import embeddings_sidecar, load_embeddings, save_embeddings
from skgradnorm._utils._safe_files import TMP_SUFFIX
from skgradnorm.exceptions import (
    CacheCorruptionWarning,
    CacheUnavailableWarning,
    EmbeddingsFileError,
)


@pytest.fixture
def count_embedded(monkeypatch):
    """Count the images that reach the model."""
    counts = {"images": 0}
    real = _encoder.encode_images

    def counting(bundle, items, **kwargs):
        counts["images"] += len(items)
        return real(bundle, items, **kwargs)

    monkeypatch.setattr(_encoder, "encode_images", counting)
    return counts


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i in range(3):
        path = folder / f"img{i}.png"
        Image.fromarray(random_image(i)).save(path)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_rerun_over_the_same_files_does_not_embed_again(tmp_path, files, count_embedded):
    cache = tmp_path / "cache"
    array = random_image(7)
    first = make_tiny_encoder(cache_dir=cache).transform([*files, array])
    assert count_embedded["images"] == 4
    count_embedded["images"] = 0
    second = make_tiny_encoder(cache_dir=cache).transform([*files, array])  # a new encoder
    assert count_embedded["images"] == 1  # only the array: arrays are not cached
    np.testing.assert_array_equal(first[:3], second[:3])  # the stored bits
    np.testing.assert_allclose(first[3], second[3], atol=1e-6)  # another batch: rounding
    fresh = make_tiny_encoder(cache_dir=False).transform([*files, array])
    np.testing.assert_allclose(first, fresh, atol=1e-6)

    # Keyed by content: a renamed copy is a hit, an edited file is a miss.
    copy = files[0].parent / "renamed copy.png"
    shutil.copy(files[0], copy)
    Image.fromarray(random_image(9)).save(files[2])
    count_embedded["images"] = 0
    out = make_tiny_encoder(cache_dir=cache).transform([copy, files[1], files[2]])
    assert count_embedded["images"] == 1
    np.testing.assert_array_equal(out[0], first[0])
    assert not np.allclose(out[2], first[2])

    # Keyed by model: another precision is a miss; cache_dir=False neither reads nor writes.
    count_embedded["images"] = 0
    make_tiny_encoder(cache_dir=cache, precision="bf16").transform(files)
    assert count_embedded["images"] == 3
    make_tiny_encoder(cache_dir=False).transform(files)
    assert count_embedded["images"] == 6


def test_cache_key_is_the_model_key(tmp_path, files):
    enc = make_tiny_encoder(cache_dir=tmp_path)
    enc.transform(files[:1])
    (folder,) = (tmp_path / "image_embeddings").iterdir()
    key = json.loads((folder / "key.json").read_text())
    assert key == enc.model_key()
    assert key["weights"]["kind"] == "file" and len(key["weights"]["sha256"]) == 64
    assert {"precision", "preprocess", "decoding", "versions"} <= set(key)


def test_damaged_entry_is_warned_once_and_embedded_again(tmp_path, files, count_embedded):
    good = make_tiny_encoder(cache_dir=tmp_path).transform(files)
    entries = sorted((tmp_path / "image_embeddings").rglob("*.emb"))
    assert len(entries) == 3
    data = bytearray(entries[0].read_bytes())
    data[40] ^= 0x01  # one bit of the payload
    entries[0].write_bytes(bytes(data))
    entries[1].write_bytes(b"short")
    count_embedded["images"] = 0
    with pytest.warns(CacheCorruptionWarning, match="2 image-embedding cache entries"):
        out = make_tiny_encoder(cache_dir=tmp_path).transform(files)
    assert count_embedded["images"] == 2
    np.testing.assert_allclose(out, good, atol=1e-6)
    count_embedded["images"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_tiny_encoder(cache_dir=tmp_path).transform(files)  # repaired
    assert count_embedded["images"] == 0


def test_unwritable_image_cache_warns_once(tmp_path, files, monkeypatch):
    def refuse(path, write):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(_image_cache, "atomic_write", refuse)
    with pytest.warns(CacheUnavailableWarning) as record:
        out = make_tiny_encoder(cache_dir=tmp_path).transform(files)
    assert len([w for w in record if w.category is CacheUnavailableWarning]) == 1
    np.testing.assert_allclose(out, make_tiny_encoder().transform(files), atol=1e-6)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.undo()
    with pytest.warns(CacheUnavailableWarning):
        make_tiny_encoder(cache_dir=not_a_folder).transform(files)


# --------------------------------------------------------------------------- saved files


def test_save_and_load_embeddings_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 8))
    names = ["a.jpg", "sub/b.png", os.fsdecode(b"caf\xe9.jpg"), "=SUM(A1).png"]
    key = {"model": "m", "weights": {"kind": "tag", "name": "t"}}
    path = tmp_path / "embeddings.npy"
    sidecar = save_embeddings(path, X, names, key)
    assert sidecar == embeddings_sidecar(path) == tmp_path / "embeddings.json"
    assert not list(tmp_path.rglob(f"*{TMP_SUFFIX}"))
    Y, got_names, got_key = load_embeddings(path, model_key=key)
    assert Y.dtype == np.float32 and np.array_equal(Y, X.astype(np.float32))
    assert got_names == names and got_key == key
    assert os.fsencode(got_names[2]) == b"caf\xe9.jpg"  # any OS file name survives
    with pytest.raises(EmbeddingsFileError, match="another model.*weights"):
        load_embeddings(path, model_key={**key, "weights": {"kind": "tag", "name": "u"}})


def test_load_embeddings_refuses_bad_files_in_one_line(tmp_path):
    path = tmp_path / "embeddings.npy"
    save_embeddings(path, np.eye(3), ["a", "b", "c"])
    np.save(path, np.eye(3, dtype=np.float32) * 2)  # another run's array
    with pytest.raises(EmbeddingsFileError, match="does not match its sidecar"):
        load_embeddings(path)
    np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EmbeddingsFileError, match="not a readable .npy"):
        load_embeddings(path)
    embeddings_sidecar(path).write_text("{broken")
    with pytest.raises(EmbeddingsFileError, match="cannot be read"):
        load_embeddings(path)
    embeddings_sidecar(path).unlink()
    with pytest.raises(EmbeddingsFileError, match="sidecar embeddings.json .* missing") as info:
        load_embeddings(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="one per row"):
        save_embeddings(path, np.eye(3), ["a"])
    with pytest.raises(ValueError, match="finite"):
        save_embeddings(path, np.full((2, 2), np.nan), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        save_embeddings(path, np.zeros((0, 3)), [])


def test_encoder_embeddings_saved_and_checked_against_the_encoder(tmp_path, files):
    enc = make_tiny_encoder(cache_dir=False)
    U = enc.transform(files)
    path = tmp_path / "out" / "embeddings.npy"
    save_embeddings(path, U, [p.name for p in files], enc.model_key())
    V, names, _ = load_embeddings(path, model_key=make_tiny_encoder().model_key())
    np.testing.assert_array_equal(U, V)
    assert names == ["img0.png", "img1.png", "img2.png"]
    with pytest.raises(EmbeddingsFileError, match="precision"):
        load_embeddings(path, model_key=make_tiny_encoder(precision="bf16").model_key())
