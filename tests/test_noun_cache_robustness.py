"""The noun cache under damage: any flipped byte, FIFOs, unwritable folders, orphans.

These tests drive :func:`embed_nouns_in_chunks` with a plain numpy ``compute`` (no model),
so they are fast and exhaustive; the encoder's use of the cache is tested in
``test_noun_cache.py``.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import warnings

import numpy as np
import pytest

from skgradnorm._clip import _noun_cache
from skgradnorm._clip._noun_cache import NounEmbeddingCache, file_sha256
from skgradnorm._clip._nouns import embed_nouns_in_chunks
from skgradnorm._utils import _safe_files
from skgradnorm.exceptions import CacheCorruptionWarning, CacheUnavailableWarning

NOUNS = ["apple", "bear", "cello", "drum", "eel", "fig", "gnu"]  # chunks of 3: 3, 3, 1
KEY = {"model": "fake"}


class Compute:
    """A deterministic fake embedder that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, chunk, progress):
        self.calls += 1
        rows = [[len(n), ord(n[0]), ord(n[-1]), 1.0] for n in chunk]
        return np.asarray(rows, dtype=np.float32)


def _reference():
    return Compute()(NOUNS, None)


def _run(root, compute=None):
    compute = compute or Compute()
    cache = NounEmbeddingCache(root, KEY, chunk_size=3)
    return embed_nouns_in_chunks(NOUNS, compute, cache=cache, verbose=False), compute, cache


def test_every_single_byte_flip_of_a_chunk_is_warned_and_recomputed(tmp_path, monkeypatch):
    monkeypatch.setattr(_safe_files.os, "fsync", lambda fd: None)  # speed only: ~180 runs
    _, _, cache = _run(tmp_path)
    target, _ = cache._paths(1)
    pristine = target.read_bytes()
    expected = _reference()
    harmless = 0
    for i in range(len(pristine)):
        data = bytearray(pristine)
        data[i] ^= 0xFF
        target.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, compute, _ = _run(tmp_path)  # never raises
        np.testing.assert_array_equal(out, expected)
        warned = [w for w in caught if issubclass(w.category, CacheCorruptionWarning)]
        if not warned:
            # Only a flip that leaves the stored array intact may pass unnoticed.
            harmless += 1
            assert compute.calls == 0
        else:
            assert compute.calls == 1 and "chunk 1" in str(warned[0].message)
        assert target.read_bytes() == pristine  # repaired (or untouched) on disk
    assert harmless < len(pristine) // 10


def test_random_byte_damage_of_the_sidecar_never_raises(tmp_path):
    _, _, cache = _run(tmp_path)
    _, meta = cache._paths(0)
    pristine = meta.read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(40):
        data = bytearray(pristine)
        for i in rng.choice(len(data), size=rng.integers(1, 4), replace=False):
            data[i] = int(rng.integers(0, 256))
        meta.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheCorruptionWarning)
            out, _, _ = _run(tmp_path)
        np.testing.assert_array_equal(out, _reference())


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("which", ["array", "sidecar"])
def test_a_fifo_in_place_of_a_chunk_file_does_not_hang(tmp_path, which):
    _, _, cache = _run(tmp_path)
    array_path, meta_path = cache._paths(0)
    target = array_path if which == "array" else meta_path
    target.unlink()
    os.mkfifo(target)
    result = {}

    def work():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result["out"], result["compute"], _ = _run(tmp_path)
        result["warnings"] = caught

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():  # unblock the reader so that the test process can end
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("reading the cache blocked on a FIFO")
    np.testing.assert_array_equal(result["out"], _reference())
    assert result["compute"].calls == 1
    assert any(issubclass(w.category, CacheCorruptionWarning) for w in result["warnings"])
    assert target.is_file()  # the FIFO was replaced by the recomputed chunk


@pytest.mark.parametrize("failure", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_unwritable_cache_falls_back_with_one_warning(tmp_path, monkeypatch, failure):
    def refuse(path, write):
        raise OSError(failure, os.strerror(failure), str(path))

    monkeypatch.setattr(_noun_cache, "atomic_write", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, compute, _ = _run(tmp_path)
    np.testing.assert_array_equal(out, _reference())
    assert compute.calls == 3
    unavailable = [w for w in caught if issubclass(w.category, CacheUnavailableWarning)]
    assert len(unavailable) == 1 and os.strerror(failure) in str(unavailable[0].message)


def test_cache_dir_that_is_a_file_falls_back_with_one_warning(tmp_path):
    root = tmp_path / "not_a_folder"
    root.write_text("x")
    with pytest.warns(CacheUnavailableWarning) as record:
        out, compute, _ = _run(root)
    assert len([w for w in record if w.category is CacheUnavailableWarning]) == 1
    np.testing.assert_array_equal(out, _reference())
    assert compute.calls == 3


def test_orphan_temporary_files_are_removed_when_old(tmp_path):
    _, _, cache = _run(tmp_path)
    old = cache.directory / f".chunk_00001.npy.abcd1234{_safe_files.TMP_SUFFIX}"
    fresh = cache.directory / f".chunk_00002.npy.efgh5678{_safe_files.TMP_SUFFIX}"
    for path in (old, fresh):
        path.write_bytes(b"half a chunk")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    out, compute, _ = _run(tmp_path)  # a full hit still sweeps
    assert compute.calls == 0 and not old.exists() and fresh.exists()
    assert len(_safe_files.remove_orphan_temps(cache.directory, older_than_s=0)) == 1
    assert not fresh.exists()


def test_replaced_weights_file_with_kept_size_and_mtime_is_hashed_again(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 3000)
    first = file_sha256(weights, cache_root=tmp_path)
    st = weights.stat()
    # A different file of the same size, renamed over the old one, its mtime restored.
    other = tmp_path / "other.bin"
    other.write_bytes(b"b" * 3000)
    os.replace(other, weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    for forget_memory in (False, True):  # this process, then a new one (disk table only)
        if forget_memory:
            _noun_cache._FILE_HASHES.clear()
        second = file_sha256(weights, cache_root=tmp_path)
        assert second != first
        assert second == file_sha256(weights)  # no memo: a fresh full hash
    # Rewritten in place (same inode), same size, mtime restored.
    with open(weights, "r+b") as fh:
        fh.write(b"c")
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    _noun_cache._FILE_HASHES.clear()
    import hashlib

    assert (
        file_sha256(weights, cache_root=tmp_path)
        == hashlib.sha256(weights.read_bytes()).hexdigest()
    )
