"""Tests of the on-disk noun-embedding cache: hits, misses, resume after a kill, corruption."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from _clip_fixtures import make_tiny_encoder, tiny_weights_file
from conftest import KilledRun

from skgradnorm._clip import _noun_cache
from skgradnorm._clip._noun_cache import (
    CacheCorruptionWarning,
    NounEmbeddingCache,
    file_sha256,
    resolve_cache_dir,
    vocabulary_sha256,
)
from skgradnorm._clip._nouns import embed_nouns_in_chunks
from skgradnorm.vocabulary import PAPER_TEMPLATES

NOUNS = [f"noun{i}" for i in range(18)] + ["dog", "hot dog"]  # 20 nouns: 5 chunks of 4


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(_noun_cache, "DEFAULT_CHUNK_SIZE", 4)
    return 4


def _chunk_dirs(root):
    base = root / "noun_embeddings"
    return sorted(p for p in base.iterdir()) if base.exists() else []


@pytest.mark.slow
def test_second_call_is_a_cache_hit(tmp_path, small_chunks, prompt_calls):
    enc = make_tiny_encoder(cache_dir=tmp_path)
    first = enc.encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 5
    (folder,) = _chunk_dirs(tmp_path)
    assert len(list(folder.glob("chunk_*.npy"))) == 5
    assert len(list(folder.glob("chunk_*.json"))) == 5
    assert not list(folder.glob(".*tmp"))  # no temporary files left behind
    key = json.loads((folder / "key.json").read_text())
    assert key["n_nouns"] == 20 and key["precision"] == "fp32" and key["chunk_size"] == 4
    assert key["weights"]["kind"] == "file" and len(key["weights"]["sha256"]) == 64
    assert set(key["versions"]) == {"open_clip", "torch"}

    prompt_calls["calls"] = 0
    second = enc.encode_nouns(NOUNS)
    third = make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)  # new instance, disk hit
    assert prompt_calls["calls"] == 0
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, third)
    fresh = make_tiny_encoder(cache_dir=False).encode_nouns(NOUNS)
    np.testing.assert_allclose(first, fresh, atol=1e-6)


@pytest.mark.slow
def test_changed_inputs_miss_the_cache(tmp_path, small_chunks, prompt_calls):
    make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    prompt_calls["calls"] = 0
    make_tiny_encoder(cache_dir=tmp_path, templates=["a photo of a {}."]).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 5
    make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS[::-1])  # other vocabulary
    assert prompt_calls["calls"] == 10
    make_tiny_encoder(cache_dir=tmp_path, precision="bf16").encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 15
    assert len(_chunk_dirs(tmp_path)) == 4
    # cache_dir=False neither reads nor writes.
    prompt_calls["calls"] = 0
    make_tiny_encoder(cache_dir=False).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 5 and len(_chunk_dirs(tmp_path)) == 4


@pytest.mark.slow
def test_killed_run_resumes_from_finished_chunks(tmp_path, small_chunks, prompt_calls):
    prompt_calls["fail_after"] = 3
    with pytest.raises(KilledRun):
        make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    (folder,) = _chunk_dirs(tmp_path)
    assert len(list(folder.glob("chunk_*.json"))) == 3

    prompt_calls.update(calls=0, fail_after=None)
    resumed = make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 2  # only the two missing chunks
    fresh = make_tiny_encoder(cache_dir=False).encode_nouns(NOUNS)
    np.testing.assert_array_equal(resumed, fresh)

    # A chunk array written without its checksum sidecar (killed in between) is redone.
    (folder / "chunk_00004.json").unlink()
    prompt_calls["calls"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 1
    np.testing.assert_array_equal(again, fresh)


@pytest.mark.parametrize(
    "damage", ["flip_bytes", "truncate", "wrong_shape", "pickle", "delete", "bad_json"]
)
def test_damaged_chunk_is_detected_and_recomputed(tmp_path, small_chunks, prompt_calls, damage):
    enc = make_tiny_encoder(cache_dir=tmp_path)
    good = enc.encode_nouns(NOUNS)
    (folder,) = _chunk_dirs(tmp_path)
    target = folder / "chunk_00002.npy"
    if damage == "flip_bytes":
        data = bytearray(target.read_bytes())
        for i in range(len(data) - 40, len(data) - 8):  # inside the float data
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "wrong_shape":
        np.save(target, np.zeros((3, 32), dtype=np.float32))
    elif damage == "pickle":
        np.save(target, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    elif damage == "delete":
        target.unlink()
    else:
        (folder / "chunk_00002.json").write_text("{not json")

    prompt_calls["calls"] = 0
    with pytest.warns(CacheCorruptionWarning, match="chunk 2"):
        out = make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 1
    np.testing.assert_array_equal(out, good)
    # Repaired: the next call is a clean hit.
    prompt_calls["calls"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_tiny_encoder(cache_dir=tmp_path).encode_nouns(NOUNS)
    assert prompt_calls["calls"] == 0


def test_embed_nouns_in_chunks_without_encoder(tmp_path):
    calls = []

    def compute(chunk, progress):
        calls.append(list(chunk))
        progress(1)
        return np.array([[len(n), 1.0] for n in chunk], dtype=np.float32)

    cache = NounEmbeddingCache(tmp_path, {"model": "fake"}, chunk_size=3)
    nouns = ["a", "bb", "ccc", "dddd", "eeeee"]
    out = embed_nouns_in_chunks(nouns, compute, cache=cache)
    assert calls == [["a", "bb", "ccc"], ["dddd", "eeeee"]]
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 4, 5])
    again = embed_nouns_in_chunks(
        nouns, compute, cache=NounEmbeddingCache(tmp_path, {"model": "fake"}, 3)
    )
    assert len(calls) == 2 and np.array_equal(out, again)
    # A different chunk size is a different key.
    embed_nouns_in_chunks(nouns, compute, cache=NounEmbeddingCache(tmp_path, {"model": "fake"}, 2))
    assert len(calls) == 5


def test_key_helpers(tmp_path, monkeypatch):
    assert vocabulary_sha256(["a", "b"]) != vocabulary_sha256(["b", "a"])
    assert vocabulary_sha256(["a b"]) != vocabulary_sha256(["a", "b"])
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x" * 1000)
    h1 = file_sha256(f, cache_root=tmp_path)
    assert json.loads((tmp_path / "file_hashes.json").read_text())
    f.write_bytes(b"y" * 1001)
    assert file_sha256(f, cache_root=tmp_path) != h1
    # The digest is reused from the disk table while the file is unchanged ...
    _noun_cache._FILE_HASHES.clear()
    digest = file_sha256(f, cache_root=tmp_path)
    _noun_cache._FILE_HASHES.clear()
    monkeypatch.setattr(_noun_cache, "_HASH_BLOCK", None)  # a full hash would now fail
    assert file_sha256(f, cache_root=tmp_path) == digest
    monkeypatch.undo()
    # ... and not once it changed, even with the same size and mtime.
    st = f.stat()
    with open(f, "r+b") as fh:
        fh.write(b"z")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    _noun_cache._FILE_HASHES.clear()
    assert file_sha256(f, cache_root=tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()

    monkeypatch.setenv("SKGRADNORM_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(None) == tmp_path / "env"
    assert resolve_cache_dir(False) is None
    assert resolve_cache_dir(tmp_path / "x") == tmp_path / "x"
    with pytest.raises(ValueError):
        resolve_cache_dir(True)


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch, small_chunks):
    monkeypatch.setenv("SKGRADNORM_CACHE", str(tmp_path / "envcache"))
    make_tiny_encoder(cache_dir=None).encode_nouns(["dog", "cat"])
    (folder,) = _chunk_dirs(tmp_path / "envcache")
    key = json.loads((folder / "key.json").read_text())
    # the weights are identified by their content, never by their path
    digest = hashlib.sha256(Path(tiny_weights_file()).read_bytes()).hexdigest()
    assert key["weights"] == {
        "kind": "file",
        "size": Path(tiny_weights_file()).stat().st_size,
        "sha256": digest,
    }
    assert tiny_weights_file() not in json.dumps(key)


def test_repeated_nouns_are_embedded_once_and_share_their_row(tmp_path, prompt_calls):
    enc = make_tiny_encoder(cache_dir=tmp_path / "cache")
    nouns = ["head", "dog", "head", "hot_dog", "dog", "head"]
    E = enc.encode_nouns(nouns)
    prompts = [p for batch in prompt_calls["prompts"] for p in batch]
    assert len(prompts) == 3 * len(PAPER_TEMPLATES)  # 3 distinct strings
    np.testing.assert_array_equal(E[0], E[2])
    np.testing.assert_array_equal(E[0], E[5])
    np.testing.assert_array_equal(E[1], E[4])
    assert not np.array_equal(E[0], E[1])
    np.testing.assert_array_equal(E[[0, 1, 3]], enc.encode_nouns(["head", "dog", "hot_dog"]))
    # the cache holds the distinct strings only
    (folder,) = _chunk_dirs(tmp_path / "cache")
    assert json.loads((folder / "key.json").read_text())["n_nouns"] == 3
