"""Issue 19's adversarial audit: bad and unusual inputs, as a demanding user would try them.

Runs every case of ``scripts/replay_bad_inputs.py`` and, on top of them, the surface that
came after the last audit: the Python API's odd inputs (dtypes, sparse, DataFrames,
memmaps, read-only and strided arrays, pickling and cloning, ``set_output``,
``GridSearchCV`` with ``label_free_scorer``, ``n_clusters="auto"`` ranges), images (corrupt,
truncated, empty, bombs, odd modes and names, links), every command-line option with
invalid values, labels files (malformed, duplicated, BOM, formula and HTML injection),
``--out`` (a file, a link, inside IMAGE_DIR), ``--embeddings`` of the wrong shape, order
or model, the caches (truncated, flipped, a folder or FIFO in place of a file, read-only),
``skgradnorm embed`` (damaged partitions, a rerun with other images), and, in separate
processes, ``kill -9`` at random moments then a rerun, two concurrent runs on one
``--out`` and on one cache, and where a run writes (nothing outside ``--out`` and the
cache folder).

Each case is classified: ``clear`` (a one-line error of the package's kinds, or exit
status 2 with one ``error:`` line), ``handled`` (no error and a check of the result says
it is right), ``traceback``, ``silent`` (no error but a wrong result) or ``hang`` (no
answer within its time limit). Run from the repository root (about 10 minutes on a
shared 2-core CPU; ``--skip-replay`` leaves out the replay's cases)::

    HF_HUB_OFFLINE=1 nice .venv/bin/python scripts/audit_first_contact.py [-v]

Nothing is downloaded: the model is a tiny open_clip architecture with random weights.
The exit status is 1 when any case is a traceback, silent or a hang.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import replay_bad_inputs as replay  # noqa: E402
from replay_bad_inputs import REPO, Silent, _check  # noqa: E402

#: Seconds an in-process case may take before it counts as a hang.
CASE_SECONDS = 120
KINDS = ("clear", "handled", "traceback", "silent", "hang")


class Hang(BaseException):
    """A case gave no answer within its time limit (a BaseException: nothing catches it)."""


@contextlib.contextmanager
def _time_limit(seconds):
    def expired(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def classify(case, seconds=CASE_SECONDS):
    """The replay's classification, with a time limit, and ``expect="any"``: a command
    line run that may either refuse in one line or succeed (a check then applies)."""
    either = []

    def wrapped():
        result = case()
        if isinstance(result, tuple) and result and result[0] == "cli" and len(result) > 2:
            opts = dict(result[2])
            if opts.get("expect") == "any":
                opts["expect"] = "error"
                either.append(True)
            return "cli", result[1], opts
        return result

    try:
        with _time_limit(seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kind, detail = replay._classify(wrapped)
    except Hang as exc:
        return "hang", str(exc)
    if either and kind == "silent" and detail == "exit status 0 for bad input":
        return "handled", ""
    return kind, detail


# --------------------------------------------------------------------------- fixtures


def _images(folder: Path, n=6, size=24, seed=0) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def _local_model(folder: Path) -> str:
    """The tiny model as a ``local-dir:`` folder, usable by a separate process."""
    import torch
    from _clip_fixtures import TINY_CONFIG, tiny_weights_file
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = torch.load(tiny_weights_file(), weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "open_clip_model.safetensors")
    cfg = {"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    return f"local-dir:{folder}"


def _world():
    from skgradnorm.datasets import make_planted_world

    return make_planted_world(n_samples=120, n_classes=3, random_state=0)


# --------------------------------------------------------------------------- the Python API


def api_cases(tmp: Path):  # noqa: PLR0915 - a list of cases
    import scipy.sparse as sp

    from skgradnorm import (
        GradNormNounSelector,
        LanguageAssistedClusterer,
        MutualDistillationClusterer,
        SphericalKMeans,
    )
    from skgradnorm.metrics import clustering_accuracy_score, clustering_metrics

    w = _world()
    X, E = w.data, w.noun_embeddings

    def km(**p):
        p.setdefault("n_init", 2)
        p.setdefault("random_state", 0)
        return SphericalKMeans(3, **p)

    ref = km().fit(X).labels_

    def same_labels(data, name, **p):
        def case():
            got = km(**p).fit(data).labels_
            _check((got == ref).all(), f"{name} changed the clustering")

        return case

    yield "k-means: float16 X", same_labels(X.astype(np.float16), "float16")
    yield "k-means: int X", lambda: km().fit(np.round(X * 100).astype(np.int64))
    yield "k-means: complex X", lambda: km().fit(X.astype(np.complex128))
    yield "k-means: object X of strings", lambda: km().fit(np.full(X.shape, "a", dtype=object))
    yield "k-means: bool X", lambda: km().fit(X > 0)
    yield "k-means: 3-D X", lambda: km().fit(X[:, :, None])
    yield "k-means: one sample", lambda: km().fit(X[:1])
    yield "k-means: list of lists", same_labels(X.tolist(), "a list of lists")
    yield "k-means: Fortran-ordered X", same_labels(np.asfortranarray(X), "Fortran order")
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    yield "k-means: strided (non-contiguous) X", same_labels(strided, "a strided view")
    ro = X.copy()
    ro.flags.writeable = False
    yield "k-means: read-only X", same_labels(ro, "a read-only array")
    mm_path = tmp / "x.npy"
    np.save(mm_path, X)
    yield "k-means: memmap X", same_labels(np.load(mm_path, mmap_mode="r"), "a memmap")

    def sparse_x():
        model = km().fit(sp.csr_matrix(X))
        _check((model.labels_ == ref).all(), "sparse X changed the clustering")

    yield "k-means: sparse CSR X", sparse_x

    def dataframe():
        import pandas as pd

        got = km().fit(pd.DataFrame(X)).labels_
        _check((got == ref).all(), "a DataFrame changed the clustering")

    if _has("pandas"):  # an optional dependency, not installed with skgradnorm
        yield "k-means: pandas DataFrame", dataframe
    yield "k-means: n_clusters=0", lambda: SphericalKMeans(0).fit(X)
    yield "k-means: n_clusters=2.5", lambda: SphericalKMeans(2.5).fit(X)
    yield "k-means: n_clusters='three'", lambda: SphericalKMeans("three").fit(X)
    yield "k-means: n_init=0", lambda: SphericalKMeans(3, n_init=0).fit(X)
    yield "k-means: max_iter=-1", lambda: SphericalKMeans(3, max_iter=-1).fit(X)
    yield "k-means: random_state=-1", lambda: SphericalKMeans(3, random_state=-1).fit(X)
    yield "k-means: random_state='a'", lambda: SphericalKMeans(3, random_state="a").fit(X)

    def auto(rng):
        return lambda: SphericalKMeans("auto", n_clusters_range=rng, random_state=0).fit(X)

    yield "k-means auto: empty range", auto(range(5, 3))
    yield "k-means auto: range from 1", auto(range(1, 4))
    yield "k-means auto: range beyond n_samples", auto(range(100, 200))
    yield "k-means auto: floats in the range", auto([2.5, 3.5])
    yield "k-means auto: negative values", auto([-3, 2])
    yield "k-means auto: a string range", auto("2-5")

    def auto_one():
        m = SphericalKMeans("auto", n_clusters_range=[3], n_init=2, random_state=0).fit(X)
        _check(m.n_clusters_ == 3 if hasattr(m, "n_clusters_") else True, "K not 3")

    yield "k-means auto: a single K", auto_one

    def predict_nan():
        km().fit(X).predict(np.where(X > 0.2, np.nan, X))

    yield "k-means: predict with NaN", predict_nan

    def pickled(make):
        def case():
            model = make().fit(X)
            back = pickle.loads(pickle.dumps(model))
            _check((back.predict(X) == model.predict(X)).all(), "unpickled predicts otherwise")

        return case

    yield "k-means: pickle a fitted model", pickled(km)

    def laic():
        sel = GradNormNounSelector(E, n_centers=6, random_state=0)
        return LanguageAssistedClusterer(3, selector=sel, n_init=2, random_state=0)

    yield "clusterer: pickle a fitted model", pickled(laic)

    def cloned():
        from sklearn.base import clone

        model = laic().fit(X)
        c = clone(model)
        _check(not hasattr(c, "labels_"), "clone kept the fit")
        _check((c.fit(X).labels_ == model.labels_).all(), "clone fits otherwise")

    yield "clusterer: clone a fitted model", cloned

    def set_output_pandas():
        sel = GradNormNounSelector(E, n_centers=6, random_state=0).set_output(transform="pandas")
        out = sel.fit(X).transform(X)
        _check(getattr(out, "shape", (0,))[0] == len(X), "set_output(pandas) shape")

    if _has("pandas"):
        yield "selector: set_output(transform='pandas')", set_output_pandas

    def set_output_default():
        sel = GradNormNounSelector(E, n_centers=6, random_state=0).set_output(transform="default")
        _finite(sel.fit(X).transform(X))

    yield "selector: set_output(transform='default')", set_output_default

    def grid_search():
        from sklearn.model_selection import GridSearchCV

        from skgradnorm.metrics import label_free_scorer
        from skgradnorm.model_selection import TransductiveSplit

        gs = GridSearchCV(
            laic(),
            {"selector__temperature": [0.05, 0.1]},
            scoring=label_free_scorer,
            cv=TransductiveSplit(),
        )
        gs.fit(X)
        _check(np.isfinite(gs.best_score_), "non-finite best score")

    yield "GridSearchCV with label_free_scorer", grid_search

    def grid_search_kfold():
        from sklearn.model_selection import GridSearchCV

        from skgradnorm.metrics import label_free_scorer

        gs = GridSearchCV(laic(), {"n_init": [1, 2]}, scoring=label_free_scorer, cv=3)
        gs.fit(X)
        _check(np.isfinite(gs.best_score_), "non-finite best score")

    yield "GridSearchCV with label_free_scorer, 3-fold", grid_search_kfold

    def sel(**p):
        p.setdefault("n_centers", 6)
        return GradNormNounSelector(p.pop("bank", E), **p)

    yield "selector: NaN in the noun bank", lambda: sel(bank=np.where(E > 0.2, np.nan, E)).fit(X)
    yield "selector: inf in the noun bank", lambda: sel(bank=np.where(E > 0.2, np.inf, E)).fit(X)
    yield "selector: 1-D noun bank", lambda: sel(bank=E[0]).fit(X)
    yield "selector: noun bank of strings", lambda: sel(bank=np.array([["a"] * 3])).fit(X)
    yield "selector: temperature NaN", lambda: sel(temperature=float("nan")).fit(X)
    yield "selector: temperature inf", lambda: sel(temperature=float("inf")).fit(X)
    yield "selector: top_k 10**9", lambda: _top_k_huge(sel)
    yield "selector: n_centers='auto', 4 samples", lambda: _auto_centres(sel, X[:4])
    yield "selector: sparse X", lambda: sel().fit(sp.csr_matrix(X))
    yield "selector: float16 X", lambda: _finite(sel().fit(X.astype(np.float16)).transform(X))
    yield (
        "selector: bank of another dtype (float16)",
        lambda: _finite(sel(bank=E.astype(np.float16)).fit(X).transform(X)),
    )

    def transform_other_dim():
        sel().fit(X).transform(X[:, :7])

    yield "selector: transform with another dimension", transform_other_dim

    def distill(**p):
        p.setdefault("n_epochs", 1)
        p.setdefault("random_state", 0)
        return MutualDistillationClusterer(3, selector=sel(), **p)

    yield "distill: learning_rate -1", lambda: distill(learning_rate=-1).fit(X)
    yield "distill: n_epochs 0", lambda: distill(n_epochs=0).fit(X)
    yield "distill: batch_size 0", lambda: distill(batch_size=0).fit(X)
    yield "distill: betas (2, 0)", lambda: distill(betas=(2.0, 0.0)).fit(X)
    yield "distill: init 'magic'", lambda: distill(init="magic").fit(X)
    yield "distill: n_clusters > n_samples", lambda: distill().set_params(n_clusters=500).fit(X)
    yield "distill: device 'meta'", lambda: distill(device="meta").fit(X)
    yield "metrics: labels of different lengths", lambda: clustering_metrics([0, 1, 2], [0, 1])
    yield "metrics: NaN labels", lambda: _acc_nan(clustering_accuracy_score)
    yield "metrics: 2-D labels", lambda: clustering_accuracy_score([[0, 1]], [[0, 1]])
    yield "metrics: empty labels", lambda: clustering_metrics([], [])

    def metrics_strings():
        acc = clustering_accuracy_score(["b", "a", "b"], [1, 0, 1])
        _check(acc == 1.0, f"ACC {acc}")

    yield "metrics: string labels", metrics_strings


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _top_k_huge(make):
    s = make(top_k=10**9).fit(_world().data)
    _check(s.selected_indices_.size <= len(_world().noun_embeddings), "more nouns than the bank")


def _auto_centres(make, X):
    make(n_centers="auto").fit(X)


def _finite(a):
    _check(np.isfinite(np.asarray(a, dtype=float)).all(), "non-finite output")


def _acc_nan(score):
    acc = score(np.array([0.0, np.nan, 1.0, np.nan]), [0, 1, 2, 1])
    _check(0 <= acc <= 1, f"ACC {acc}")


# --------------------------------------------------------------------------- images


def _odd_image_files():
    """(name, writer(folder), expect) of image files a user's folder may hold."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))

    def save(name, image, **kw):
        return lambda folder: image.save(folder / name, **kw)

    def raw(name, data):
        return lambda folder: (folder / name).write_bytes(data)

    png = io.BytesIO()
    rgb.save(png, format="PNG")
    jpg = io.BytesIO()
    rgb.save(jpg, format="JPEG")
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    exif = Image.Exif()
    exif[0x0112] = 6
    yield "zero-byte .jpg", raw("empty.jpg", b""), "error"
    yield "truncated PNG", raw("trunc.png", png.getvalue()[: len(png.getvalue()) // 2]), "error"
    yield "truncated JPEG", raw("trunc.jpg", jpg.getvalue()[: len(jpg.getvalue()) // 2]), "any"
    yield "text file named .png", raw("text.png", b"hello, I am not an image\n"), "error"
    yield "HTML named .jpg", raw("page.jpg", b"<html><script>alert(1)</script></html>"), "error"
    yield "1-byte .gif", raw("one.gif", b"G"), "error"
    yield "1x1 image", save("tiny.png", Image.new("RGB", (1, 1), "white")), "ok"
    yield "CMYK JPEG", save("cmyk.jpg", rgb.convert("CMYK")), "ok"
    yield "palette PNG with transparency", save("pal.png", rgb.convert("P"), transparency=0), "ok"
    yield "grayscale + alpha PNG", save("la.png", rgb.convert("LA")), "ok"
    yield "RGBA PNG", save("rgba.png", rgb.convert("RGBA")), "ok"
    yield "1-bit image", save("bw.png", rgb.convert("1")), "ok"
    yield "32-bit float TIFF", save("f.tiff", rgb.convert("F")), "ok"
    yield (
        "animated GIF",
        lambda folder: frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:]),
        "ok",
    )
    yield "EXIF-rotated JPEG", save("rot.jpg", rgb, exif=exif), "ok"
    yield "WebP", save("w.webp", rgb), "ok"
    yield "BMP", save("b.bmp", rgb), "ok"
    yield "upper-case .JPG", save("UP.JPG", rgb), "ok"
    yield "a name with spaces and unicode", save("mañana é 日本.png", rgb), "ok"
    yield "a name with a newline", save("new\nline.png", rgb), "ok"
    yield "a name starting with a dash", save("-k.png", rgb), "ok"
    yield "a name with a comma and quotes", save('a,"b".png', rgb), "ok"
    yield "a hidden file", save(".hidden.png", rgb), "ok"
    yield "a folder named x.png", lambda folder: (folder / "dir.png").mkdir(), "ok"
    yield (
        "a broken link .png",
        lambda folder: (folder / "broken.png").symlink_to(folder / "nope"),
        "error",
    )
    yield "a deeply nested image", lambda folder: _nested(folder, rgb), "ok"
    yield (
        "a PNG bomb (30000 x 30000 declared)",
        lambda folder: _png_bomb(folder / "bomb.png"),
        "error",
    )
    yield "a non-image with .tif", raw("x.tif", b"II*\x00garbage"), "error"


def _nested(folder: Path, image):
    deep = folder.joinpath(*[f"d{i}" for i in range(30)])
    deep.mkdir(parents=True)
    image.save(deep / "deep.png")


def _png_bomb(path: Path):
    """A tiny PNG whose header declares 30000 x 30000 pixels (900 Mpx, over PIL's limit)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 30000 * 3) * 4)  # a few rows; the rest missing
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
    path.write_bytes(data + chunk(b"IEND", b""))


def image_cases(tmp: Path, base: list):
    """One odd file among good images, clustered by the command line."""
    good = _images(tmp / "good")
    for i, (name, make, expect) in enumerate(_odd_image_files()):

        def case(make=make, expect=expect, i=i):
            folder = tmp / f"case{i}"
            folder.mkdir()
            for p in good.iterdir():
                (folder / p.name).write_bytes(p.read_bytes())
            make(folder)
            out = tmp / f"out{i}"
            argv = ["cluster", str(folder), "-k", "2", "-o", str(out), *base]
            check = _assigned(out) if expect == "ok" else None
            return "cli", argv, {"expect": expect, "check": check}

        yield f"images: {name}", case


def _assigned(out: Path):
    """A check: every image found is in assignments.csv, once."""

    def check():
        import csv

        if not (out / "assignments.csv").is_file():
            return  # refused: the exit status says whether that was right
        with open(out / "assignments.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        paths = [r["path"] for r in rows]
        _check(len(paths) == len(set(paths)), "an image assigned twice")
        _check(len(paths) >= 6, f"only {len(paths)} images assigned")

    return check


# --------------------------------------------------------------------------- command line


def option_cases(tmp: Path, images: Path, base: list):
    """Every option of ``cluster``, ``embed`` and ``demo`` with invalid values."""
    n = [0]

    def out():
        n[0] += 1
        return str(tmp / f"opt{n[0]}")

    def cluster(*argv, expect="error", check=None):
        full = ["cluster", str(images), "-k", "2", "-o", out(), *base, *argv]
        return lambda: ("cli", full, {"expect": expect, "check": check})

    bad = {
        "-k": ["0", "-1", "abc", "2.5", ""],
        "--n-centers": ["0", "-3", "abc", "1000"],
        "--temperature": ["0", "nan", "inf", "abc"],
        "--top-k": ["0", "-1", "x"],
        "--retrieval-temperature": ["0", "nan", "-1", "soon"],
        "--n-init": ["0", "-2"],
        "--seed": ["4294967296", "1.5"],
        "--batch-size": ["0", "-1"],
        "--num-workers": ["-1", "many"],
        "--strategy": ["magic"],
        "--head": ["forest"],
        "--map": ["umap"],
        "--model": ["no-such-architecture"],
        "--pretrained": [str(tmp / "no-such-weights.pt")],
        "--device": ["cuda:99", "tpu", ""],
        "--vocabulary": [str(tmp / "no-such-vocab.txt"), "nonsense-bank"],
    }
    for option, values in bad.items():
        for value in values:
            if option == "-k":
                argv = ["cluster", str(images), "-k", value, "-o", out(), *base]
                yield f"cli: -k {value!r}", lambda a=argv: ("cli", a, {})
            else:
                yield f"cli: {option} {value!r}", cluster(option, value)
    for grid in (
        "{not json",
        "[1, 2]",
        '{"nope": [1]}',
        '{"temperature": []}',
        '{"temperature": 0.1}',
        '{"n_centers": ["x"]}',
        '{"top_k": [0]}',
    ):
        yield f"cli: --tune --tune-grid {grid}", cluster("--tune", "--tune-grid", grid)
    yield "cli: -k auto on 6 images", cluster("-k", "auto", expect="any")
    yield "cli: -k 1 (one cluster: valid, if pointless)", cluster("-k", "1", expect="any")
    yield (
        "cli: demo --n-classes 1",
        lambda: (
            "cli",
            ["demo", "-o", out(), "--n-classes", "1"],
            {"expect": "any"},
        ),
    )
    yield "cli: no arguments", lambda: ("cli", [], {})
    yield "cli: an unknown option", cluster("--colour", "blue")
    yield "cli: cluster without --out", lambda: ("cli", ["cluster", str(images), "-k", "2"], {})
    yield (
        "cli: IMAGE_DIR is a file",
        lambda: (
            "cli",
            ["cluster", str(next(images.iterdir())), "-k", "2", "-o", out(), *base],
            {},
        ),
    )
    yield (
        "cli: neither IMAGE_DIR nor --embeddings",
        lambda: (
            "cli",
            ["cluster", "-k", "2", "-o", out(), *base],
            {},
        ),
    )
    for argv in (
        ["--n-samples", "abc"],
        ["--n-classes", "0"],
        ["--n-samples", "-5"],
    ):
        yield f"cli: demo {' '.join(argv)}", lambda a=argv: ("cli", ["demo", "-o", out(), *a], {})
    model = base[: base.index("--quiet")]
    for argv in (["--partition-size", "0"], ["--partition-size", "-1"], ["--batch-size", "0"]):
        yield (
            f"cli: embed {' '.join(argv)}",
            lambda a=argv: (
                "cli",
                ["embed", str(images), "-o", out(), *model, *a],
                {},
            ),
        )


def vocabulary_cases(tmp: Path, images: Path, base: list):
    n = [0]

    def run(content, expect="error"):
        n[0] += 1
        path = tmp / f"vocab{n[0]}.txt"
        path.write_bytes(content)
        argv = ["cluster", str(images), "-k", "2", "-o", str(tmp / f"vo{n[0]}"), *base]
        argv += ["--vocabulary", str(path)]
        return lambda: ("cli", argv, {"expect": expect})

    yield "cli: vocabulary, an empty file", run(b"")
    yield "cli: vocabulary, blank lines only", run(b"\n \n\t\n")
    yield "cli: vocabulary, one noun (gradnorm)", run(b"dog\n", expect="ok")
    yield "cli: vocabulary, duplicates", run(b"dog\ndog\ncat\ncat\n", expect="ok")
    yield "cli: vocabulary, Latin-1 bytes", run("caf\xe9\nd\xf6g\n".encode("latin-1"))
    yield "cli: vocabulary, binary", run(bytes(range(1, 256)) * 4)
    yield "cli: vocabulary, a 100,000-character line", run(b"x" * 100_000 + b"\ndog\n", "ok")
    yield "cli: vocabulary, CRLF and a BOM", run("\ufeffdog\r\ncat\r\n".encode(), expect="ok")


def labels_cases(tmp: Path, images: Path, base: list):
    rel = sorted(p.name for p in images.iterdir())
    n = [0]

    def run(text, expect="error", check=None, raw=None):
        n[0] += 1
        path = tmp / f"labels{n[0]}.csv"
        path.write_bytes(raw if raw is not None else text.encode())
        out = tmp / f"lo{n[0]}"
        argv = ["cluster", str(images), "-k", "2", "-o", str(out), *base, "--labels", str(path)]
        return lambda: ("cli", argv, {"expect": expect, "check": check and check(out)})

    rows = [f"{name},{'ab'[i % 2]}" for i, name in enumerate(rel)]
    yield "cli: labels, an empty file", run("")
    yield "cli: labels, a header only", run("path,label\n")
    yield "cli: labels, one column", run("".join(f"{name}\n" for name in rel))
    yield "cli: labels, three columns", run("".join(f"{r},extra\n" for r in rows), "any")
    yield "cli: labels, a header row", run("path,label\n" + "\n".join(rows) + "\n", "ok")
    yield "cli: labels, CRLF", run("\r\n".join(rows) + "\r\n", "ok")
    yield (
        "cli: labels, Latin-1 bytes",
        run("", raw="\n".join(rows).replace(",a", ",\xe9").encode("latin-1")),
    )
    yield "cli: labels, rows for other files only", run("x.png,a\ny.png,b\n")
    yield "cli: labels, one class", run("".join(f"{name},a\n" for name in rel), "ok")
    yield "cli: labels, the same row twice", run("\n".join(rows + rows[:1]) + "\n", "ok")
    yield "cli: labels, an empty label", run("\n".join([f"{rel[0]},", *rows[1:]]) + "\n")
    yield (
        "cli: labels, quoted commas",
        run("".join(f'"{name}","class, {i % 2}"\n' for i, name in enumerate(rel)), "ok"),
    )

    def injected(out):
        def check():
            report = (out / "report.html").read_text(encoding="utf-8")
            _check("<script>alert(1)</script>" not in report, "HTML injected into the report")
            metrics = json.loads((out / "metrics.json").read_text())
            _check(metrics["n_samples"] == len(rel), "labels misread")

        return check

    evil = ["<script>alert(1)</script>", '=HYPERLINK("http://x")']
    yield (
        "cli: labels, HTML and formula injection",
        run("".join(f"{name},{evil[i % 2]}\n" for i, name in enumerate(rel)), "ok", injected),
    )
    yield (
        "cli: labels, absolute paths",
        run("".join(f"{images / name},{'ab'[i % 2]}\n" for i, name in enumerate(rel)), "ok"),
    )
    yield (
        "cli: labels, a folder",
        lambda: (
            "cli",
            [
                "cluster",
                str(images),
                "-k",
                "2",
                "-o",
                str(tmp / "lof"),
                *base,
                "--labels",
                str(tmp),
            ],
            {},
        ),
    )


def out_cases(tmp: Path, images: Path, base: list):
    afile = tmp / "a-file"
    afile.write_text("x")
    target = tmp / "target"
    target.mkdir()
    link = tmp / "link-to-folder"
    link.symlink_to(target, target_is_directory=True)
    flink = tmp / "link-to-file"
    flink.symlink_to(afile)
    dangling = tmp / "dangling"
    dangling.symlink_to(tmp / "nowhere")

    def run(out, expect="error", check=None, context=None):
        argv = ["cluster", str(images), "-k", "2", "-o", str(out), *base]
        return lambda: ("cli", argv, {"expect": expect, "check": check, "context": context})

    yield "cli: --out an existing file", run(afile)
    yield "cli: --out a link to a folder", run(link, "ok")
    yield "cli: --out a link to a file", run(flink)
    yield "cli: --out a dangling link", run(dangling, "any")
    yield "cli: --out ''", run("")
    yield "cli: --out IMAGE_DIR itself", run(images, "any")
    yield "cli: --out inside IMAGE_DIR", run(images / "results", "any")
    ro = tmp / "ro"
    ro.mkdir()
    yield "cli: --out read-only", run(ro, context=lambda: replay._patched_open_in(ro))
    planted = tmp / "planted"
    planted.mkdir()
    (planted / "report.html").symlink_to(afile)
    yield (
        "cli: --out with a link planted as report.html",
        run(
            planted,
            "any",
            check=lambda: _check(afile.read_text() == "x", "wrote through a planted link"),
        ),
    )


def embeddings_cases(tmp: Path, images: Path, base: list):
    """``--embeddings FILE``: an ``embeddings.npy`` of an earlier run, with its sidecar, damaged."""
    made = {}

    def earlier():
        if not made:
            from skgradnorm._cli import main

            out = tmp / "earlier"
            with contextlib.redirect_stderr(io.StringIO()):
                if main(["cluster", str(images), "-k", "2", "-o", str(out), *base]) != 0:
                    raise RuntimeError("the earlier run failed")
            made["npy"] = np.load(out / "embeddings.npy")
            made["json"] = (out / "embeddings.json").read_text()
        return made

    n = [0]

    def run(change_array=None, change_json=None, expect="error", with_images=True):
        def case():
            n[0] += 1
            got = earlier()
            path = tmp / f"e{n[0]}.npy"
            array = got["npy"] if change_array is None else change_array(got["npy"].copy())
            np.save(path, array, allow_pickle=True)
            meta = json.loads(got["json"])
            text = json.dumps(meta) if change_json is None else change_json(meta)
            path.with_suffix(".json").write_text(text)
            argv = ["cluster", *([str(images)] if with_images else [])]
            argv += ["--embeddings", str(path), "-k", "2", "-o", str(tmp / f"eo{n[0]}"), *base]
            return "cli", argv, {"expect": expect}

        return case

    def edited(key, value):
        def change(meta):
            meta[key] = value
            return json.dumps(meta)

        return change

    yield "cli: --embeddings as written", run(expect="ok")
    yield "cli: --embeddings without IMAGE_DIR", run(with_images=False)
    yield "cli: --embeddings rows reordered", run(lambda a: a[::-1].copy())
    yield "cli: --embeddings 1-D", run(lambda a: a[0])
    yield "cli: --embeddings wrong width", run(lambda a: a[:, :-1].copy())
    yield "cli: --embeddings a row missing", run(lambda a: a[:-1].copy())
    yield "cli: --embeddings with NaN", run(lambda a: np.full_like(a, np.nan))
    yield "cli: --embeddings float64", run(lambda a: a.astype(np.float64))
    yield "cli: --embeddings object array", run(lambda a: np.array([{"a": 1}] * len(a)))
    yield "cli: --embeddings zero rows", run(lambda a: a[:0].copy())
    yield "cli: --embeddings sidecar garbage", run(change_json=lambda meta: "{")
    yield (
        "cli: --embeddings sidecar of another model",
        run(change_json=edited("model", {"model_name": "ViT-B-32", "weights": "other"})),
    )
    yield (
        "cli: --embeddings sidecar naming other images",
        run(
            change_json=lambda meta: json.dumps(
                dict(meta, names=[f"x{i}.png" for i in meta["names"]])
            )
        ),
    )
    (tmp / "a-text.npy").write_text("hello")
    (tmp / "a-text.json").write_text("{}")
    yield (
        "cli: --embeddings not a .npy",
        lambda: (
            "cli",
            [
                "cluster",
                str(images),
                "--embeddings",
                str(tmp / "a-text.npy"),
                "-k",
                "2",
                "-o",
                str(tmp / "eo-text"),
                *base,
            ],
            {},
        ),
    )
    yield (
        "cli: --embeddings missing",
        lambda: (
            "cli",
            [
                "cluster",
                str(images),
                "--embeddings",
                str(tmp / "no-such.npy"),
                "-k",
                "2",
                "-o",
                str(tmp / "eo-missing"),
                *base,
            ],
            {},
        ),
    )


def embed_cases(tmp: Path, images: Path, base: list):
    """``skgradnorm embed`` folders: damaged, reused with other images."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return
    model = base[: base.index("--quiet")]
    emb = tmp / "emb"

    def embed_first():
        from skgradnorm._cli import main

        with contextlib.redirect_stderr(io.StringIO()):
            code = main(["embed", str(images), "-o", str(emb), *model, "--partition-size", "4"])
        if code != 0:
            raise RuntimeError("embed failed")

    n = [0]

    def damaged(damage, expect="error"):
        def case():
            n[0] += 1
            copy = tmp / f"emb{n[0]}"
            if not emb.exists():
                embed_first()
            import shutil

            shutil.copytree(emb, copy)
            damage(copy)
            argv = ["cluster", "--embeddings", str(copy), "-k", "2", "-o", str(tmp / f"ee{n[0]}")]
            return "cli", [*argv, *base], {"expect": expect}

        return case

    def flip(path):
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))

    yield "embed dir: a flipped byte in a partition", damaged(lambda d: flip(d / "part_00000.npy"))
    yield (
        "embed dir: a truncated partition",
        damaged(
            lambda d: (d / "part_00001.npy").write_bytes((d / "part_00001.npy").read_bytes()[:100])
        ),
    )
    yield "embed dir: a partition missing", damaged(lambda d: (d / "part_00000.npy").unlink())
    yield "embed dir: paths.txt missing", damaged(lambda d: (d / "paths.txt").unlink())
    yield (
        "embed dir: manifest.json garbage",
        damaged(lambda d: (d / "manifest.json").write_text("{")),
    )
    yield (
        "embed dir: a partition that is a folder",
        damaged(lambda d: ((d / "part_00000.npy").unlink(), (d / "part_00000.npy").mkdir())),
    )

    def fifo_partition(d):
        (d / "part_00000.npy").unlink()
        os.mkfifo(d / "part_00000.npy")

    yield "embed dir: a FIFO as a partition", damaged(fifo_partition)

    def rerun_other_images():
        if not emb.exists():
            embed_first()
        other = _images(tmp / "other-imgs", n=9, seed=5)
        from skgradnorm._clip._encoder import CLIPEncoder
        from skgradnorm.distributed import embed_directory

        enc = CLIPEncoder(model[1], pretrained=model[3], cache_dir=False, device="cpu")
        import shutil

        target = tmp / "emb-other"
        shutil.copytree(emb, target)
        U, paths = embed_directory(other, target, encoder=enc, partition_size=4)
        _check(len(paths) == 9, f"{len(paths)} paths for 9 images")
        fresh = enc.transform(list(paths))
        _check(np.allclose(U.compute(), fresh, atol=1e-5), "old embeddings reused for new images")

    yield "embed: a rerun into a folder of other images", rerun_other_images

    def embed_into_file():
        afile = tmp / "emb-file"
        afile.write_text("x")
        return "cli", ["embed", str(images), "-o", str(afile), *model], {}

    yield "embed: --out a file", embed_into_file


def cache_cases(tmp: Path, images: Path, base: list):
    """The noun and image caches damaged between two runs: the rerun must still be right."""
    import shutil

    pristine = tmp / "cache"
    argv = ["cluster", str(images), "-k", "2", *base]
    at = argv.index("--cache-dir") + 1
    first = {}

    def assignments(out):
        return (out / "assignments.csv").read_text()

    def ensure_first():
        if not first:
            from skgradnorm._cli import main

            out = tmp / "c-first"
            a = list(argv)
            a[at] = str(pristine)
            with contextlib.redirect_stderr(io.StringIO()):
                if main([*a, "-o", str(out)]) != 0:
                    raise RuntimeError("first run failed")
            first["csv"] = assignments(out)

    n = [0]

    def damaged(kind, suffix, action, expect="ok"):
        def case():
            ensure_first()
            n[0] += 1
            cache = tmp / f"cache{n[0]}"
            shutil.copytree(pristine, cache)
            for path in sorted((cache / kind).rglob(f"*{suffix}")):
                action(path)
            out = tmp / f"c{n[0]}"
            a = list(argv)
            a[at] = str(cache)

            def same():
                if (out / "assignments.csv").is_file():
                    _check(assignments(out) == first["csv"], "a damaged cache changed the result")

            return "cli", [*a, "-o", str(out)], {"expect": expect, "check": same}

        return case

    def truncate(path):
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])

    def flip(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x55
        path.write_bytes(bytes(data))

    def empty(path):
        path.write_bytes(b"")

    def to_folder(path):
        path.unlink()
        path.mkdir()

    def to_fifo(path):
        path.unlink()
        os.mkfifo(path)

    def to_loop(path):
        path.unlink()
        path.symlink_to(path)

    def garbage_json(path):
        path.write_text("{not json")

    damages = (
        ("truncated", truncate),
        ("flipped", flip),
        ("emptied", empty),
        ("a folder", to_folder),
        ("a FIFO", to_fifo),
        ("a link loop", to_loop),
    )
    for what, action in damages:
        yield f"cache: noun chunks {what}", damaged("noun_embeddings", ".npy", action)
        yield f"cache: image entries {what}", damaged("image_embeddings", ".emb", action)
    yield "cache: noun sidecars garbage", damaged("noun_embeddings", "_00000.json", garbage_json)
    yield "cache: noun sidecars a FIFO", damaged("noun_embeddings", "_00000.json", to_fifo)
    yield "cache: key.json garbage", damaged("noun_embeddings", "key.json", garbage_json)

    def read_only_cache():
        ensure_first()
        fresh = tmp / "ro-cache"
        fresh.mkdir()
        a = [*argv, "-o", str(tmp / "c-ro")]
        a[at] = str(fresh)

        def same():
            if (tmp / "c-ro" / "assignments.csv").is_file():
                _check(assignments(tmp / "c-ro") == first["csv"], "a read-only cache changed it")

        real = os.open

        def refuse(path, flags, *args, **kw):
            if str(fresh) in os.fspath(path) and flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, flags, *args, **kw)

        context = {"context": lambda: mock.patch.object(os, "open", refuse)}
        return "cli", a, {"expect": "any", "check": same, **context}

    yield "cache: a read-only cache folder", read_only_cache

    def cache_is_a_file():
        a = [*argv, "-o", str(tmp / "c-file")]
        a[at] = str(images / "0.png")
        return "cli", a, {}

    yield "cache: --cache-dir a file", cache_is_a_file


# --------------------------------------------------------------------------- processes


def _cli_process(argv, env, cwd, **kw):
    cmd = [sys.executable, "-m", "skgradnorm", *argv]
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def process_cases(tmp: Path, seconds=240):
    """kill -9 then rerun, concurrent runs, and where a run writes: in separate processes."""
    sandbox = tmp / "sandbox"
    home, scratch, cwd = sandbox / "home", sandbox / "tmp", sandbox / "cwd"
    for d in (home, scratch, cwd):
        d.mkdir(parents=True)
    images = _images(tmp / "p-imgs", n=12)
    vocab = tmp / "p-vocab.txt"
    vocab.write_text("".join(f"noun{i}\n" for i in range(300)))
    model = _local_model(tmp / "p-model")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKGRADNORM", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(scratch), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    cache = tmp / "p-cache"
    common = [
        "-k",
        "3",
        "--model",
        model,
        "--device",
        "cpu",
        "--vocabulary",
        str(vocab),
        "--n-init",
        "2",
        "--quiet",
    ]

    def run(argv, timeout=seconds):
        p = _cli_process(argv, env, cwd)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise Hang(f"no answer within {timeout} s: {' '.join(argv[:3])}") from None
        return p.returncode, err

    def verdict(code, err, expect="ok"):
        if "Traceback" in err or code not in (0, 2):
            return "traceback", f"exit {code}: {err.strip()[-300:]}"
        if expect == "ok":
            return ("handled", "") if code == 0 else ("silent", f"refused: {err.strip()[-200:]}")
        return ("clear", err.strip().splitlines()[-1]) if code == 2 else ("silent", "exit 0")

    def complete(out: Path):
        names = ("assignments.csv", "selected_nouns.csv", "clusters.json", "report.html")
        missing = [n for n in names if not (out / n).is_file()]
        _check(not missing, f"missing after the rerun: {missing}")

    def outside_writes():
        """Only --out and the cache folder get files (HOME, TMPDIR, cwd stay empty)."""
        out = tmp / "p-where"
        before = {p: p.stat().st_mtime_ns for p in images.rglob("*")}
        code, err = run(
            [
                "cluster",
                str(images),
                "-o",
                str(out),
                "--cache-dir",
                str(cache),
                "--labels",
                str(_labels(tmp, images)),
                *common,
            ]
        )
        kind, detail = verdict(code, err)
        if kind != "handled":
            return kind, detail
        stray = [str(p.relative_to(sandbox)) for p in sandbox.rglob("*") if not p.is_dir()]
        after = {p: p.stat().st_mtime_ns for p in images.rglob("*")}
        if stray or after != before:
            return "silent", f"written outside --out and the cache: {stray[:5]}"
        return "handled", ""

    yield "process: nothing written outside --out and --cache-dir", outside_writes

    def default_cache():
        out = tmp / "p-default"
        code, err = run(["cluster", str(images), "-o", str(out), *common])
        kind, detail = verdict(code, err)
        if kind != "handled":
            return kind, detail
        stray = [p.relative_to(sandbox) for p in sandbox.rglob("*") if not p.is_dir()]
        stray = [str(p) for p in stray if not str(p).startswith("home/.cache/skgradnorm/")]
        return ("silent", f"written outside the cache: {stray[:5]}") if stray else ("handled", "")

    yield "process: the default cache (~/.cache/skgradnorm) and nothing else", default_cache

    def demo_writes():
        out = tmp / "p-demo"
        code, err = run(["demo", "-o", str(out), "--n-samples", "300"])
        kind, detail = verdict(code, err)
        stray = [str(p.relative_to(sandbox)) for p in sandbox.rglob("*") if not p.is_dir()]
        stray = [p for p in stray if not p.startswith("home/.cache/skgradnorm/")]
        if kind == "handled" and stray:
            return "silent", f"demo wrote outside --out: {stray[:5]}"
        return kind, detail

    yield "process: demo writes only into --out", demo_writes
    rng = random.Random(19)
    for trial in range(5):

        def kill_then_rerun(trial=trial):
            out = tmp / f"p-kill{trial}"
            c = tmp / f"p-kcache{trial}"
            argv = ["cluster", str(images), "-o", str(out), "--cache-dir", str(c), *common]
            p = _cli_process(argv, env, cwd)
            time.sleep(rng.uniform(1.0, 12.0))
            p.kill()
            p.communicate()
            code, err = run(argv)
            if code == 2 and "already holds results" in err:  # finished before the kill
                code, err = run([*argv, "--overwrite"])
            kind, detail = verdict(code, err)
            if kind == "handled":
                complete(out)
                left = [p.name for p in out.rglob("*skgradnorm-tmp*")]
                _check(not left, f"staged files left: {left}")
            return kind, detail

        yield f"process: kill -9 at a random moment, then rerun (trial {trial})", kill_then_rerun

    def concurrent_one_out(trial):
        out = tmp / f"p-same{trial}"
        argv = ["cluster", str(images), "-o", str(out), "--cache-dir", str(cache), *common]
        if trial:  # both told to replace what is there: only the lock keeps them apart
            out.mkdir()
            argv.append("--overwrite")
        procs = [_cli_process(argv, env, cwd), _cli_process(argv, env, cwd)]
        errs = "".join(p.communicate(timeout=seconds)[1] for p in procs)
        codes = sorted(p.returncode for p in procs)
        if "Traceback" in errs:
            return "traceback", errs.strip()[-300:]
        left = [p.name for p in out.rglob("*skgradnorm-tmp*")]
        _check(not left, f"staged files left: {left}")
        if codes == [0, 2] and ("another skgradnorm run" in errs or "already holds" in errs):
            complete(out)
            return "clear", "the second run refused in one line"
        if codes == [0, 0] and trial:  # one after the other: each replaced the results
            complete(out)
            return "handled", "the two runs did not overlap"
        return "silent", f"exit statuses {codes}: {errs.strip()[-200:]}"

    for trial in range(2):
        yield (
            f"process: two concurrent runs on one --out (trial {trial})",
            lambda t=trial: concurrent_one_out(t),
        )

    def concurrent_one_cache():
        shared = tmp / "p-shared-cache"
        outs = [tmp / "p-c1", tmp / "p-c2"]
        procs = [
            _cli_process(
                ["cluster", str(images), "-o", str(o), "--cache-dir", str(shared), *common],
                env,
                cwd,
            )
            for o in outs
        ]
        results = [p.communicate(timeout=seconds) for p in procs]
        errs = "".join(e for _, e in results)
        if "Traceback" in errs or any(p.returncode for p in procs):
            return "traceback", errs.strip()[-300:]
        a, b = ((o / "assignments.csv").read_text() for o in outs)
        _check(a == b, "two runs sharing a cache disagree")
        code, err = run(
            ["cluster", str(images), "-o", str(tmp / "p-c3"), "--cache-dir", str(shared), *common]
        )
        _check(
            code == 0 and (tmp / "p-c3" / "assignments.csv").read_text() == a,
            "a run from the shared cache disagrees",
        )
        return "handled", ""

    yield "process: two concurrent runs on one cache", concurrent_one_cache

    def embed_kill_rerun():
        try:
            import distributed  # noqa: F401
        except ImportError:
            return "handled", "(no dask)"
        out = tmp / "p-embed"
        argv = [
            "embed",
            str(images),
            "-o",
            str(out),
            "--model",
            model,
            "--device",
            "cpu",
            "--partition-size",
            "3",
        ]
        p = _cli_process(argv, env, cwd)
        time.sleep(rng.uniform(3.0, 10.0))
        p.kill()
        p.communicate()
        code, err = run(argv)
        kind, detail = verdict(code, err)
        if kind != "handled":
            return kind, detail
        code, err = run(
            [
                "cluster",
                "--embeddings",
                str(out),
                "-o",
                str(tmp / "p-embed-out"),
                "--cache-dir",
                str(cache),
                *common,
            ]
        )
        return verdict(code, err)

    yield "process: embed killed (-9), rerun, cluster --embeddings", embed_kill_rerun

    def missing_scheduler_seconds():
        start = time.perf_counter()
        code, err = run(
            [
                "embed",
                str(images),
                "-o",
                str(tmp / "p-sched"),
                "--model",
                model,
                "--scheduler",
                str(tmp / "none.json"),
            ],
            timeout=60,
        )
        kind, detail = verdict(code, err, expect="error")
        if kind == "clear" and time.perf_counter() - start > 30:
            return "hang", f"refused after {time.perf_counter() - start:.0f} s"
        return kind, detail

    yield "process: embed --scheduler FILE missing", missing_scheduler_seconds

    def fifo_labels_process():
        fifo = tmp / "p-fifo"
        os.mkfifo(fifo)
        code, err = run(
            ["cluster", str(images), "-o", str(tmp / "p-fifo-out"), "--labels", str(fifo), *common],
            timeout=60,
        )
        return verdict(code, err, expect="error")

    yield "process: --labels a FIFO (no reader hangs)", fifo_labels_process


def _labels(tmp: Path, images: Path) -> Path:
    path = tmp / "p-labels.csv"
    rel = sorted(p.name for p in images.iterdir())
    path.write_text("".join(f"{name},{'abc'[i % 3]}\n" for i, name in enumerate(rel)))
    return path


def _process_case(case):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return case()
    except Hang as exc:
        return "hang", str(exc)
    except Silent as exc:
        return "silent", str(exc)
    except Exception as exc:  # noqa: BLE001 - the audit's own failure is a finding too
        return "traceback", f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- the runner


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case")
    parser.add_argument("--skip-replay", action="store_true", help="only this audit's cases")
    parser.add_argument("--only", default="", help="groups to run, comma-separated")
    args = parser.parse_args(argv)
    tally = dict.fromkeys(KINDS, 0)
    names = set()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        from _clip_fixtures import register_tiny_config, tiny_weights_file

        register_tiny_config()
        images = _images(tmp / "imgs")
        vocab = tmp / "vocab.txt"
        vocab.write_text("dog\ncat\ncar\ntree\n")
        base = ["--model", "skgradnorm-tiny", "--pretrained", tiny_weights_file()]
        base += ["--cache-dir", str(tmp / "cache"), "--device", "cpu", "--quiet"]
        base += ["--vocabulary", str(vocab), "--n-init", "2", "--n-centers", "2"]
        groups = []
        if not args.skip_replay:
            for sub in ("r-img", "r-cli"):
                (tmp / sub).mkdir()
            groups += [
                ("replay: estimators", replay.estimator_cases()),
                ("replay: images", replay.image_cases(tmp / "r-img")),
                ("replay: cli", replay.cli_cases(tmp / "r-cli")),
            ]
        for sub in (
            "api",
            "images",
            "options",
            "vocab",
            "labels",
            "out",
            "emb",
            "embed",
            "cache",
            "proc",
        ):
            (tmp / sub).mkdir()
        groups += [
            ("api", api_cases(tmp / "api")),
            ("images", image_cases(tmp / "images", base)),
            ("options", option_cases(tmp / "options", images, base)),
            ("vocabulary", vocabulary_cases(tmp / "vocab", images, base)),
            ("labels", labels_cases(tmp / "labels", images, base)),
            ("out", out_cases(tmp / "out", images, base)),
            ("embeddings", embeddings_cases(tmp / "emb", images, base)),
            ("embed", embed_cases(tmp / "embed", images, base)),
            ("cache", cache_cases(tmp / "cache-cases", images, base)),
            ("processes", process_cases(tmp / "proc")),
        ]
        start = time.perf_counter()
        for group, cases in groups:
            if args.only and not any(o and o in group for o in args.only.split(",")):
                continue
            for name, case in cases:
                if name in names:
                    raise SystemExit(f"two cases named {name!r}")
                names.add(name)
                kind, detail = _process_case(case) if group == "processes" else classify(case)
                tally[kind] += 1
                if args.verbose or kind in ("traceback", "silent", "hang"):
                    print(f"{kind:<9} {name}: {detail}", flush=True)
    print(
        f"tried {sum(tally.values())} distinct cases in {time.perf_counter() - start:.0f} s: "
        + ", ".join(f"{tally[k]} {k}" for k in KINDS)
    )
    return 0 if tally["traceback"] == tally["silent"] == tally["hang"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
