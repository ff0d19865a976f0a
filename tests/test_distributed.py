"""skgradnorm.distributed: embeddings on a Dask cluster, resumable folders, block-wise predict.

The cluster tests share one ``LocalCluster`` (2 worker processes, 1 thread each). The tiny
open_clip model is saved as a ``local-dir`` folder (config + weights), so the worker
processes load it without any registration of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _clip_fixtures import TINY_CONFIG, tiny_weights_file

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skgradnorm import (  # noqa: E402
    CLIPEncoder,
    GradNormNounSelector,
    LanguageAssistedClusterer,
    SphericalKMeans,
)
from skgradnorm.distributed import (  # noqa: E402
    BlockwisePostFit,
    IncompleteEmbeddingsError,
    embed_directory,
    embed_images,
    embed_nouns,
    load_embeddings,
    noun_cache_for,
    predict_blockwise,
    transform_blockwise,
)

NOUNS = [f"thing {i}" for i in range(13)] + ["cat", "dog", "car", "a very long noun phrase"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """The tiny model as a local-dir folder (open_clip_config.json + safetensors weights)."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny_model")
    state = torch.load(tiny_weights_file(), weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "open_clip_model.safetensors")
    config = {"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder


def tiny(folder, **params):
    params.setdefault("cache_dir", False)
    return CLIPEncoder("tiny", pretrained=f"local-dir:{folder}", device="cpu", **params)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """30 random PNG files of assorted sizes and modes."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        h, w = rng.integers(20, 60, size=2)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if i % 7 == 3:
            image = image.convert("L")
        path = folder / f"sub{i % 3}" / f"img_{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        paths.append(str(path))
    (folder / ".hidden.png").write_bytes(b"not an image")
    return folder, paths


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


# Run on the workers (by reference: pytest's sys.path reaches the spawned workers).
_LOADS = {"n": 0}


def _count_model_loads():
    """Wrap open_clip's model factory in this worker so that each model load is counted."""
    from skgradnorm._utils._compat import import_open_clip

    open_clip = import_open_clip()
    original = getattr(open_clip.create_model_and_transforms, "__wrapped__", None)
    original = original or open_clip.create_model_and_transforms

    def counted(*args, **kwargs):
        _LOADS["n"] += 1
        return original(*args, **kwargs)

    counted.__wrapped__ = original
    open_clip.create_model_and_transforms = counted
    _LOADS["n"] = 0


def _model_loads():
    return _LOADS["n"]


def _forget_encoders():
    from skgradnorm.distributed import _workers

    _workers._ENCODERS.clear()


def _slow_down_transform(seconds):
    """Make CLIPEncoder.transform sleep first in this worker (so a job lasts long enough)."""
    cls = CLIPEncoder
    original = getattr(cls.transform, "__wrapped__", cls.transform)

    def slow(self, X):
        time.sleep(seconds)
        return original(self, X)

    slow.__wrapped__ = original
    cls.transform = slow


def _runs(folder, n_parts):
    return [json.loads((folder / f"part_{i:05d}.json").read_text())["run"] for i in range(n_parts)]


# --------------------------------------------------------------------------- single machine


@pytest.mark.slow  # a fresh interpreter imports torch: seconds
def test_import_skgradnorm_does_not_import_dask():
    code = (
        "import sys, skgradnorm; from skgradnorm import datasets, metrics, vocabulary; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')); "
        "assert not bad, bad; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bad_inputs_fail_fast(tmp_path, images):
    _, paths = images
    with pytest.raises(TypeError, match="not one path.*embed_directory"):
        embed_images(paths[0])
    with pytest.raises(ValueError, match="empty"):
        embed_images([])
    with pytest.raises(TypeError, match="save them to files"):
        embed_images([np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="line break"):
        embed_images(["a\nb.png"])
    with pytest.raises(InvalidParameterError, match="partition_size"):
        embed_images(paths, partition_size=0)
    with pytest.raises(ValueError, match="batch_size"):  # the encoder is checked up front
        embed_images(paths, CLIPEncoder(batch_size=0))
    with pytest.raises(ValueError, match="not a folder"):
        embed_directory(tmp_path / "nope", tmp_path / "emb")
    with pytest.raises(ValueError, match="no images found"):
        embed_directory(tmp_path, tmp_path / "emb")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_embeddings(tmp_path)
    with pytest.raises(TypeError, match="not one string"):
        embed_nouns("cat", CLIPEncoder())
    with pytest.raises(ValueError, match="exactly one"):
        embed_nouns(["cat"], CLIPEncoder(templates=["no slot"]))
    with pytest.raises(ValueError, match="2-D"):
        predict_blockwise(SphericalKMeans(2), da.zeros((4, 2, 2)))


@pytest.mark.slow
def test_in_process_folder_resumes_and_checks(tmp_path, images, tiny_dir):
    """Without a cluster: the same folder format, resumed, and checked against misuse."""
    image_dir, paths = images
    enc = tiny(tiny_dir)
    expected = enc.transform(sorted(paths))
    U, listed = embed_directory(image_dir, tmp_path / "emb", encoder=enc, partition_size=8)
    assert listed == sorted(paths)  # the hidden file is skipped, the order is sorted
    assert U.numblocks == (4, 1)
    np.testing.assert_allclose(U.compute(), expected, rtol=0, atol=1e-6)
    folder = tmp_path / "emb"
    first = _runs(folder, 4)
    (folder / "part_00002.json").unlink()  # as if the job had died before partition 2
    with pytest.raises(IncompleteEmbeddingsError, match="3 of 4 partitions"):
        load_embeddings(folder)
    U2, _ = embed_directory(image_dir, folder, encoder=enc, partition_size=8)
    second = _runs(folder, 4)
    assert [a == b for a, b in zip(first, second, strict=True)] == [True, True, False, True]
    np.testing.assert_array_equal(U2.compute(), U.compute())
    with pytest.raises(ValueError, match="partition_size"):
        embed_directory(image_dir, folder, encoder=enc, partition_size=5)
    with pytest.raises(ValueError, match="encoder"):
        embed_directory(image_dir, folder, encoder=tiny(tiny_dir, precision="bf16"))
    U3, _ = embed_directory(image_dir, folder, encoder=enc, partition_size=5, resume=False)
    assert U3.numblocks == (6, 1)
    np.testing.assert_allclose(U3.compute(), expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_resume_embeds_again_what_changed_and_checks_the_model(tmp_path, images, tiny_dir):
    """The folder is keyed by the images' contents and the model's weights, not their names."""
    import shutil

    from PIL import Image
    from safetensors.torch import load_file, save_file

    image_dir, model = tmp_path / "imgs", tmp_path / "model"
    shutil.copytree(images[0], image_dir)
    shutil.copytree(tiny_dir, model)
    enc = tiny(model)
    folder = tmp_path / "emb"
    _, listed = embed_directory(image_dir, folder, encoder=enc, partition_size=8)
    first = _runs(folder, 4)
    # An image edited in place (same name): its partition, and only it, is embedded again.
    edited = image_dir / listed[9]
    Image.fromarray(np.full((30, 30, 3), 200, np.uint8)).save(edited)
    U, _ = embed_directory(image_dir, folder, encoder=enc, partition_size=8)
    second = _runs(folder, 4)
    assert [a == b for a, b in zip(first, second, strict=True)] == [True, False, True, True]
    np.testing.assert_allclose(U.compute()[9], enc.transform([str(edited)])[0], atol=1e-6)
    key = enc.model_key()
    assert load_embeddings(folder, model_key=key)[1] == load_embeddings(folder)[1]
    # Other weights at the same path: refused when read with the new model, and a resumed
    # job embeds every partition again.
    weights = model / "open_clip_model.safetensors"
    save_file({k: v + 0.01 for k, v in load_file(weights).items()}, weights)
    changed = tiny(model)
    assert changed.model_key() != key
    with pytest.raises(ValueError, match="another model.*weights"):
        load_embeddings(folder, model_key=changed.model_key())
    embed_directory(image_dir, folder, encoder=changed, partition_size=8)
    assert all(a != b for a, b in zip(second, _runs(folder, 4), strict=True))
    load_embeddings(folder, model_key=changed.model_key())


def test_a_damaged_partition_is_never_clustered(tmp_path):
    """A partition damaged after its job (a flipped byte, a FIFO in its place) and a lost
    paths.txt are refused in one line naming the file, never read as embeddings nor waited
    on (issue 19's audit)."""
    from skgradnorm.distributed import _store

    folder = tmp_path / "emb"
    rows = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    manifest = {"format": _store.FORMAT, "version": _store.FORMAT_VERSION}
    _store.write_manifest(folder, dict(manifest, n_images=6, partition_size=3), list("abcdef"))
    for i in range(2):
        _store.save_partition(folder, i, rows[3 * i : 3 * i + 3], "run")
    np.testing.assert_array_equal(load_embeddings(folder)[0].compute(), rows)
    part = folder / "part_00001.npy"
    data = bytearray(part.read_bytes())
    data[-1] ^= 0xFF
    part.write_bytes(bytes(data))
    U, _ = load_embeddings(folder)  # lazy: nothing is read until computed
    with pytest.raises(IncompleteEmbeddingsError, match="part_00001.npy.*SHA-256"):
        U.compute()
    part.unlink()
    os.mkfifo(part)  # opening it for reading would wait for a writer forever
    with pytest.raises(IncompleteEmbeddingsError, match="part_00001.npy.*not a regular file"):
        load_embeddings(folder)[0].compute()
    (folder / "paths.txt").unlink()
    with pytest.raises(IncompleteEmbeddingsError, match="paths.txt"):
        load_embeddings(folder)


def test_unreadable_image_reported(tmp_path, images, tiny_dir):
    _, paths = images
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):  # UnreadableImageError, the encoder's
        embed_images([*paths[:4], str(bad)], tiny(tiny_dir), out_dir=tmp_path / "emb")


def test_blockwise_on_numpy_and_sampled_fit(planted_world):
    X = planted_world.data
    km = SphericalKMeans(5, n_init=2, random_state=0, device="cpu")
    model = BlockwisePostFit(km, max_fit_samples=200, random_state=1)
    Xd = da.from_array(X, chunks=(97, X.shape[1]))
    model.fit(Xd)
    ref = SphericalKMeans(5, n_init=2, random_state=0, device="cpu").fit(X[model.fit_rows_])
    assert len(model.fit_rows_) == 200 and np.all(np.diff(model.fit_rows_) > 0)
    np.testing.assert_array_equal(model.predict(Xd).compute(), ref.predict(X))
    np.testing.assert_array_equal(model.predict(X), ref.predict(X))  # numpy: no dask
    np.testing.assert_allclose(model.transform(Xd).compute(), ref.transform(X), atol=1e-6)
    full = BlockwisePostFit(km, max_fit_samples=None).fit(Xd)
    assert len(full.fit_rows_) == X.shape[0]


# --------------------------------------------------------------------------- on a cluster


@pytest.mark.slow
def test_distributed_embeddings_equal_single_process(client, images, tiny_dir, tmp_path):
    _, paths = images
    enc = tiny(tiny_dir)
    expected = enc.transform(paths)
    client.run(_forget_encoders)
    client.run(_count_model_loads)
    U = embed_images(paths, enc, client=client, out_dir=tmp_path / "emb", partition_size=4)
    assert U.shape == expected.shape and U.numblocks == (8, 1)
    assert np.abs(U.compute() - expected).max() < 1e-6
    loads = client.run(_model_loads)
    assert sorted(loads.values()) in ([0, 1], [1, 1])  # 8 partitions, one load per worker
    V = embed_images(paths, enc, client=client, partition_size=6)  # kept in worker memory
    assert V.numblocks == (5, 1)
    assert np.abs(V.compute(scheduler=client) - expected).max() < 1e-6
    assert sum(client.run(_model_loads).values()) == sum(loads.values())  # no new load


@pytest.mark.slow
def test_killed_worker_and_restarted_job(client, images, tiny_dir, tmp_path):
    _, paths = images
    enc = tiny(tiny_dir)
    expected = enc.transform(paths)
    folder = tmp_path / "emb"
    n_parts = 10
    client.run(_slow_down_transform, 0.3)
    pids = client.run(os.getpid)
    result = {}
    job = threading.Thread(
        target=lambda: result.update(
            U=embed_images(paths, enc, client=client, out_dir=folder, partition_size=3)
        )
    )
    job.start()
    deadline = time.monotonic() + 60
    while len(list(folder.glob("part_*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # a worker dies mid-job; its nanny starts a new one
    killed_mid_job = job.is_alive()
    job.join(timeout=120)
    assert killed_mid_job and not job.is_alive()
    assert victim not in client.run(os.getpid).values()
    assert np.abs(result["U"].compute() - expected).max() < 1e-6
    first = _runs(folder, n_parts)
    assert len(set(first)) == 1  # one job wrote every partition

    # Restart the job with three partitions lost: only those three are computed again.
    for i in (1, 4, 9):
        (folder / f"part_{i:05d}.json").unlink()
    U = embed_images(paths, enc, client=client, out_dir=folder, partition_size=3)
    second = _runs(folder, n_parts)
    redone = [i for i in range(n_parts) if first[i] != second[i]]
    assert redone == [1, 4, 9]
    assert np.abs(U.compute() - expected).max() < 1e-6
    embed_images(paths, enc, client=client, out_dir=folder, partition_size=3)
    assert _runs(folder, n_parts) == second  # nothing left to do: nothing computed


@pytest.mark.slow
def test_distributed_noun_bank(client, tiny_dir, tmp_path):
    expected = tiny(tiny_dir).encode_nouns(NOUNS)
    enc = tiny(tiny_dir, cache_dir=tmp_path / "cache")
    E = embed_nouns(NOUNS, enc, client=client, chunk_size=4)  # 5 chunks, a separate cache
    assert np.abs(E - expected).max() < 1e-6
    E = embed_nouns(NOUNS, tiny(tiny_dir), client=client, chunk_size=4)  # no cache at all
    assert np.abs(E - expected).max() < 1e-6

    # With the default chunk size the workers fill the cache encode_nouns reads: a sentinel
    # written there comes back from encode_nouns, which therefore computes nothing.
    E = embed_nouns(NOUNS, enc, client=client)
    assert np.abs(E - expected).max() < 1e-6
    cache = noun_cache_for(enc, NOUNS)
    sentinel = np.eye(len(NOUNS), E.shape[1], dtype=np.float32)
    cache.save_chunk(0, sentinel)
    np.testing.assert_array_equal(enc.encode_nouns(NOUNS), sentinel)
    np.testing.assert_array_equal(embed_nouns(NOUNS, enc, client=client), sentinel)


@pytest.mark.slow
def test_blockwise_predict_on_cluster(client, planted_world):
    X = planted_world.data
    Xd = da.from_array(X, chunks=(128, 16))  # split columns too: rows are rejoined
    selector = GradNormNounSelector(planted_world.noun_embeddings, n_centers=10, random_state=0)
    models = [
        LanguageAssistedClusterer(5, selector=selector, n_init=3, random_state=0, device="cpu"),
        SphericalKMeans(5, n_init=3, random_state=0, device="cpu"),
    ]
    for model in models:
        model.fit(X)
        y = predict_blockwise(model, Xd)
        assert y.numblocks == (Xd.numblocks[0],)
        np.testing.assert_array_equal(y.compute(scheduler=client), model.predict(X))
    Xt = transform_blockwise(models[1], Xd)
    np.testing.assert_allclose(Xt.compute(scheduler=client), models[1].transform(X), atol=1e-6)
