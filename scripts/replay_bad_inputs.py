"""Replay a list of bad inputs against the package and print the tally.

Each case feeds skgradnorm something wrong (a shape, a NaN, an impossible parameter, an
unusable path, an extreme number, ...) and is classified by what happened:

- ``clear``: a one-line error of the package's kinds (``ValueError``, ``TypeError``, its
  own exceptions, or exit status 2 with one ``error:`` line for the command line);
- ``handled``: no error, and a check of the result says it is right;
- ``traceback``: any other exception, or a multi-line message;
- ``silent``: no error, but the result is wrong.

The goal is 0 tracebacks and 0 silent wrong results. Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/replay_bad_inputs.py [--verbose]

It needs no weights: image cases use a tiny open_clip model with random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))  # this checkout's skgradnorm, not an installed one
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError)


class Silent(AssertionError):
    """A case ran without an error but its result is wrong."""


def _world():
    from skgradnorm.datasets import make_planted_world

    return make_planted_world(n_samples=120, n_classes=3, random_state=0)


def _selector(**params):
    from skgradnorm import GradNormNounSelector

    w = _world()
    params.setdefault("n_centers", 6)
    params.setdefault("random_state", 0)
    return GradNormNounSelector(w.noun_embeddings, **params), w


def _laic(**params):
    from skgradnorm import LanguageAssistedClusterer

    selector, w = _selector()
    params.setdefault("n_init", 2)
    params.setdefault("random_state", 0)
    return LanguageAssistedClusterer(3, selector=selector, **params), w


def _check(condition, message):
    if not condition:
        raise Silent(message)


# --------------------------------------------------------------------------- estimators


def estimator_cases():
    from skgradnorm import SphericalKMeans, gradnorm_scores
    from skgradnorm._retrieval import text_counterparts

    w = _world()
    X = w.data

    def fit_selector(data=X, **params):
        sel, _ = _selector(**params)
        return sel.fit(data)

    yield "selector: NaN in X", lambda: fit_selector(np.where(X > 0.2, np.nan, X))
    yield "selector: 1-D X", lambda: fit_selector(X[0])
    yield "selector: empty X", lambda: fit_selector(X[:0])
    yield "selector: wrong dimension", lambda: fit_selector(X[:, :10])
    yield "selector: zero row", lambda: fit_selector(np.vstack([X, np.zeros(X.shape[1])]))
    yield "selector: n_centers > n_samples", lambda: fit_selector(n_centers=10_000)
    yield "selector: temperature 0", lambda: fit_selector(temperature=0.0)
    yield "selector: top_k 0", lambda: fit_selector(top_k=0)
    yield "selector: unknown strategy", lambda: fit_selector(strategy="magic")
    yield "selector: max_samples < n_centers", lambda: fit_selector(max_samples=3)

    def empty_bank():
        from skgradnorm import GradNormNounSelector

        GradNormNounSelector(np.zeros((0, X.shape[1])), n_centers=4).fit(X)

    yield "selector: empty noun bank", empty_bank

    def vocabulary_mismatch():
        from skgradnorm import GradNormNounSelector

        GradNormNounSelector(w.noun_embeddings, vocabulary=["a", "b"], n_centers=4).fit(X)

    yield "selector: vocabulary of the wrong length", vocabulary_mismatch

    def p_inf():
        sel = fit_selector(p=np.inf)
        _check(np.isfinite(sel.scores_).all(), "p=inf gave non-finite scores")

    yield "selector: p = inf", p_inf

    def tiny_temperature_float32():
        sel = fit_selector(X.astype(np.float32), temperature=1e-3)
        _check(sel.selected_indices_.size > 0, "nothing selected")

    yield "selector: float32, temperature 1e-3", tiny_temperature_float32

    def tiny_retrieval():
        sel = fit_selector(X.astype(np.float32), retrieval_temperature=1e-39)
        _check(np.isfinite(sel.transform(X.astype(np.float32))).all(), "non-finite retrieval")

    yield "selector: retrieval_temperature 1e-39", tiny_retrieval

    def laic_fit(data=X, **params):
        laic, _ = _laic(**params)
        return laic.fit(data)

    yield "clusterer: n_clusters > n_samples", lambda: laic_fit(X[:2])
    yield "clusterer: n_clusters 0", lambda: _laic()[0].set_params(n_clusters=0).fit(X)

    def predict_unfitted():
        laic, _ = _laic()
        laic.predict(X)

    yield "clusterer: predict before fit", predict_unfitted

    def predict_wrong_dim():
        laic_fit().predict(X[:, :5])

    yield "clusterer: predict with the wrong dimension", predict_wrong_dim

    def huge_scale():
        ref = SphericalKMeans(3, n_init=2, random_state=0).fit(X).labels_
        got = SphericalKMeans(3, n_init=2, random_state=0).fit(X.astype(float) * 1e200).labels_
        _check((ref == got).all(), "X * 1e200 changed the clustering")

    yield "k-means: X * 1e200", huge_scale

    def tiny_scale():
        ref = SphericalKMeans(3, n_init=2, random_state=0).fit(X).labels_
        got = SphericalKMeans(3, n_init=2, random_state=0).fit(X.astype(float) * 1e-200).labels_
        _check((ref == got).all(), "X * 1e-200 changed the clustering")

    yield "k-means: X * 1e-200", tiny_scale
    yield "k-means: n_clusters > n_samples", lambda: SphericalKMeans(500).fit(X)
    yield "k-means: inf in X", lambda: SphericalKMeans(3).fit(np.where(X > 0.2, np.inf, X))
    yield "k-means: unknown backend", lambda: SphericalKMeans(3, backend="gpu").fit(X)
    yield "scores: negative temperature", lambda: gradnorm_scores(X, X, temperature=-1)
    yield "scores: p < 1", lambda: gradnorm_scores(X, X, temperature=0.1, p=0.5)

    def retrieval_1e310():
        t = text_counterparts(X[:5], X, temperature=1e-310)
        _check(np.isfinite(t).all(), "NaN text counterparts")

    yield "retrieval: float64, temperature 1e-310", retrieval_1e310
    yield "k-means: n_clusters=True", lambda: SphericalKMeans(n_clusters=True).fit(X)

    def float32_overflow():
        big = (X.astype(np.float64) * (3e38 / float(np.abs(X).max()))).astype(np.float32)
        ref = SphericalKMeans(3, n_init=2, random_state=0).fit(X).labels_
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's finiteness sum
            got = SphericalKMeans(3, n_init=2, random_state=0).fit(big).labels_
        _check((ref == got).all(), "float32 rows with overflowing norms changed the clustering")

    yield "k-means: float32 values near 3e38", float32_overflow

    def huge_k_range():
        start = time.perf_counter()
        try:
            SphericalKMeans("auto", n_clusters_range=range(2, 10**8)).fit(X)
        finally:
            _check(time.perf_counter() - start < 5, "a huge K range took long to refuse")

    yield "k-means: n_clusters_range=range(2, 10**8)", huge_k_range

    def mixed_labels():
        from skgradnorm.metrics import clustering_accuracy_score

        acc = clustering_accuracy_score(np.array([1, "a", 1, "a"], dtype=object), [0, 1, 0, 1])
        _check(acc == 1.0, f"ACC of mixed-type labels is {acc}")

    yield "metrics: mixed-type object labels", mixed_labels

    def identical_map():
        from skgradnorm._reporting._report_data import collection_map

        _, coords, _ = collection_map(np.tile(X[:1], (12, 1)), method="tsne")
        _check(np.isfinite(coords).all(), "non-finite map")

    yield "report: t-SNE map of 12 identical rows", identical_map

    def offline_tag():
        from skgradnorm import CLIPEncoder

        start = time.perf_counter()
        try:
            CLIPEncoder("ViT-B-32", pretrained="openai", device="cpu").load_model()
        finally:
            _check(time.perf_counter() - start < 3, "the offline tag took 3 s or more to fail")

    yield "encoder: ViT-B-32/openai without network", offline_tag


# --------------------------------------------------------------------------- images


def image_cases(tmp: Path):
    from _clip_fixtures import make_tiny_encoder

    enc = make_tiny_encoder(cache_dir=False)
    yield "encoder: empty list", lambda: enc.transform([])
    yield "encoder: a single path", lambda: enc.transform(str(tmp / "x.png"))
    yield "encoder: float image array", lambda: enc.transform([np.zeros((8, 8, 3), np.float32)])
    yield "encoder: (0, 0, 3) array", lambda: enc.transform([np.zeros((0, 0, 3), np.uint8)])
    yield "encoder: 2-channel array", lambda: enc.transform([np.zeros((4, 4, 2), np.uint8)])
    garbage = tmp / "garbage.png"
    garbage.write_bytes(b"not a png")
    yield "encoder: garbage file", lambda: enc.transform([str(garbage)])
    yield "encoder: missing file", lambda: enc.transform([str(tmp / "missing.jpg")])
    yield "encoder: texts as one string", lambda: enc.encode_texts("a dog")
    yield "encoder: empty nouns", lambda: enc.encode_nouns([])
    yield "encoder: a noun that is not a string", lambda: enc.encode_nouns(["dog", 3])
    yield "encoder: bad template", lambda: enc.set_params(templates=["no slot"]).fit()

    def sixteen_bit_png():
        from PIL import Image

        gradient = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
        path = tmp / "gradient16.png"
        Image.fromarray(gradient).save(path)
        enc8 = make_tiny_encoder(cache_dir=False)
        eight = (gradient >> 8).astype(np.uint8)
        a = enc8.transform([str(path)])
        b = enc8.transform([np.stack([eight] * 3, axis=-1)])
        _check(np.allclose(a, b, atol=1e-3), "a 16-bit PNG is not read as its 8-bit image")

    yield "images: 16-bit PNG", sixteen_bit_png
    fresh = make_tiny_encoder(cache_dir=False)  # enc's templates were spoiled above
    yield "encoder: a noun with a lone surrogate", lambda: fresh.encode_nouns(["dog", "ca\ud800t"])

    def wide_png():
        from PIL import Image

        path = tmp / "wide.png"
        Image.new("RGB", (20000, 1)).save(path)  # a few hundred bytes
        seen = []
        bundle = fresh.load_model()._model_bundle
        real = bundle.preprocess

        class Spy:  # the model's own preprocessing, recording the size it is given
            transforms = real.transforms

            def __call__(self, image):
                seen.append(image.size)
                return real(image)

        bundle.preprocess = Spy()
        try:
            fresh.transform([str(path)])
        finally:
            bundle.preprocess = real
        _check(max(seen[0]) < 1000, f"the 20,000 x 1 image reached the resize whole: {seen}")

    yield "images: a 20,000 x 1 PNG (decompression bomb by shape)", wide_png


# --------------------------------------------------------------------------- command line


def cli_cases(tmp: Path):
    from _clip_fixtures import register_tiny_config, tiny_weights_file

    register_tiny_config()
    images = tmp / "imgs"
    images.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")
    vocab = tmp / "vocab.txt"
    vocab.write_text("dog\ncat\ncar\ntree\n")
    base = ["--model", "skgradnorm-tiny", "--pretrained", tiny_weights_file()]
    base += ["--cache-dir", str(tmp / "cache"), "--device", "cpu", "--quiet"]
    base += ["--vocabulary", str(vocab), "--n-init", "2"]
    afile = tmp / "afile"
    afile.write_text("x")

    def run(*argv):
        return lambda: ("cli", ["cluster", *argv, *base])

    yield "cli: IMAGE_DIR missing", run(str(tmp / "nope"), "-k", "2", "-o", str(tmp / "o1"))
    (tmp / "empty").mkdir()
    yield "cli: no images", run(str(tmp / "empty"), "-k", "2", "-o", str(tmp / "o2"))
    yield "cli: k > n", run(str(images), "-k", "99", "-o", str(tmp / "o3"))
    yield "cli: out inside a file", run(str(images), "-k", "2", "-o", str(afile / "sub"))
    yield "cli: out under /proc", run(str(images), "-k", "2", "-o", "/proc/skgradnorm-x")
    yield (
        "cli: labels missing",
        run(str(images), "-k", "2", "-o", str(tmp / "o4"), "--labels", str(tmp / "none.csv")),
    )
    garbage = ["cluster", str(images), "-k", "2", "-o", str(tmp / "o5"), *base]
    yield "cli: garbage weights", lambda: ("cli", [*garbage, "--pretrained", str(afile)])
    yield (
        "cli: negative temperature",
        run(str(images), "-k", "2", "-o", str(tmp / "o6"), "--temperature", "-1"),
    )
    yield from first_contact_cases(tmp, images, vocab, base)


# --------------------------------------------------------------------------- issue 19


def _patched_open_in(folder: Path):
    """os.open refusing to create files in ``folder``, as the kernel does for a non-root
    user and a read-only folder (this script may run as root, which writes anywhere)."""
    real = os.open

    def fake(path, flags, *args, **kwargs):
        if Path(os.fspath(path)).parent == folder and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path, flags, *args, **kwargs)

    return mock.patch.object(os, "open", fake)


def _patched_scandir(name: str):
    """os.scandir refusing to list folders called ``name`` (a chmod 000 folder)."""
    real = os.scandir

    def fake(path="."):
        if Path(os.fspath(path)).name == name:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    return mock.patch.object(os, "scandir", fake)


def _full_disk():
    from skgradnorm._utils import _safe_files

    real = _safe_files.StagedFiles.add

    def add(self, path, data):
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, data)

    return mock.patch.object(_safe_files.StagedFiles, "add", add)


@contextlib.contextmanager
def _strict_stdout():
    """A stdout whose encoding refuses what it cannot encode (PYTHONIOENCODING=:strict)."""
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    with mock.patch.object(sys, "stdout", strict):
        yield
    strict.flush()


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def first_contact_cases(tmp: Path, images: Path, vocab: Path, base: list):  # noqa: PLR0915
    """The defects of issue 19's audit: each is refused in one line, or handled right."""
    from _clip_fixtures import TINY_CONFIG, tiny_weights_file

    from skgradnorm._reporting._out_dir import output_folder_lock

    rel = sorted(p.name for p in images.iterdir())
    labels = tmp / "labels.csv"
    labels.write_text("".join(f"{name},{'ab'[i % 2]}\n" for i, name in enumerate(rel)))
    n = [0]

    def out():
        n[0] += 1
        return str(tmp / f"fc{n[0]}")

    def cluster(*argv, expect="error", context=None, check=None, folder=images):
        argv = ["cluster", str(folder), "-k", "2", "-o", out(), *base, "--n-centers", "2", *argv]
        return lambda: ("cli", argv, {"expect": expect, "context": context, "check": check})

    def written(path, content):
        Path(path).write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    # labels
    yield "cli: labels, a NUL byte", cluster("--labels", written(tmp / "nul.csv", "0.png,a\x00b\n"))
    two = labels.read_text() + f"{rel[0]},c\n"
    yield "cli: labels, two for one image", cluster("--labels", written(tmp / "two.csv", two))
    os.mkfifo(tmp / "fifo")
    yield "cli: labels, a FIFO", cluster("--labels", str(tmp / "fifo"))
    yield "cli: labels, /dev/zero", cluster("--labels", "/dev/zero")
    yield "cli: vocabulary, a FIFO", cluster("--vocabulary", str(tmp / "fifo"))
    yield "cli: vocabulary, /dev/zero", cluster("--vocabulary", "/dev/zero")
    (tmp / "loop").symlink_to(tmp / "loop")
    odd = "\ufeff" + labels.read_text() + f"~nosuchuser/x.png,z\n{tmp / 'loop' / 'x.png'},z\n"

    def metrics_of_six():
        found = sorted(tmp.glob("fc*/metrics.json"), key=os.path.getmtime)[-1]
        _check(json.loads(found.read_text())["n_samples"] == 6, "labels misread")

    yield (
        "cli: labels with a BOM, ~nosuchuser and link-loop rows",
        cluster("--labels", written(tmp / "odd.csv", odd), expect="ok", check=metrics_of_six),
    )
    looped = tmp / "looped"
    looped.mkdir()
    for name in rel:
        (looped / name).write_bytes((images / name).read_bytes())
    (looped / "back").symlink_to(looped, target_is_directory=True)
    (looped / "self.png").symlink_to(looped / "self.png")
    yield (
        "cli: image folder with link loops, --labels",
        cluster("--labels", str(labels), folder=looped),
    )
    # options
    yield "cli: --device meta", cluster("--device", "meta")
    yield "cli: --seed -1", cluster("--seed", "-1")
    yield "cli: --tune-grid without --tune", cluster("--tune-grid", '{"temperature": [0.1]}')
    yield (
        "cli: --tune-grid, a negative temperature",
        cluster("--tune", "--tune-grid", '{"temperature": [-1]}'),
    )
    yield "cli: --tune-grid, p < 1", cluster("--tune", "--tune-grid", '{"selector__p": [0.5]}')
    yield "cli: --cache-dir ''", cluster("--cache-dir", "")
    afile = tmp / "afile2"
    afile.write_text("x")
    yield "cli: --cache-dir inside a file", cluster("--cache-dir", str(afile / "c"))
    one = written(tmp / "one.txt", "dog\n")
    yield "cli: --strategy sic, one noun", cluster("--strategy", "sic", "--vocabulary", one)
    two_nouns = written(tmp / "two.txt", "dog\ncat\n")
    yield (
        "cli: --strategy sic drops every noun",
        cluster("--strategy", "sic", "--vocabulary", two_nouns),
    )
    # the image folder and the weights
    yield (
        "cli: an unreadable subfolder",
        lambda: (
            "cli",
            ["cluster", str(tmp.parent), "-k", "2", "-o", out(), *base],
            {"context": lambda: _patched_scandir("imgs")},
        ),
    )
    yield "cli: an unreadable IMAGE_DIR", cluster(context=lambda: _patched_scandir(images.name))
    weights = tiny_weights_file()
    real_access = os.access
    yield (
        "cli: unreadable weights",
        cluster(
            context=lambda: mock.patch.object(
                os, "access", lambda p, m: os.fspath(p) != weights and real_access(p, m)
            )
        ),
    )

    def offline_default_model():
        argv = ["cluster", str(images), "-k", "2", "-o", out(), "--quiet"]
        return "cli", [*argv, "--cache-dir", str(tmp / "cache")], {"seconds": 3.0}

    yield "cli: default model (ViT-B-32/openai) without network", offline_default_model
    # OUT_DIR
    for name in ("embeddings.npy", "embeddings.json"):
        folder = Path(out())
        (folder / name).mkdir(parents=True)
        yield (
            f"cli: {name} in OUT_DIR is a folder",
            lambda f=folder: (
                "cli",
                ["cluster", str(images), "-k", "2", "-o", str(f), *base],
                {},
            ),
        )
    pages = Path(out()) / "clusters"
    pages.mkdir(parents=True)
    yield (
        "cli: a read-only clusters/ in OUT_DIR",
        lambda: (
            "cli",
            ["cluster", str(images), "-k", "2", "-o", str(pages.parent), *base],
            {"context": lambda: _patched_open_in(pages)},
        ),
    )
    killed = Path(out())
    (killed / "clusters").mkdir(parents=True)
    (killed / "clusters" / ".cluster-0.html.ab12.skgradnorm-tmp").write_text("half")
    yield (
        "cli: rerun after a kill -9 during the write",
        lambda: (
            "cli",
            ["cluster", str(images), "-k", "2", "-o", str(killed), *base],
            {"expect": "ok"},
        ),
    )
    held = Path(out())
    yield (
        "cli: a second run on a locked OUT_DIR",
        lambda: (
            "cli",
            ["cluster", str(images), "-k", "2", "-o", str(held), *base],
            {"context": lambda: output_folder_lock(held)},
        ),
    )
    yield (
        "cli: a second run on finished results, no --overwrite",
        lambda: (
            "cli",
            ["cluster", str(images), "-k", "2", "-o", str(killed), *base],
            {},
        ),
    )
    before = {}

    def full_disk_left_as_it_was():
        _check(_snapshot(killed) == before, "the full disk changed OUT_DIR")

    yield (
        "cli: a full disk while writing the results",
        lambda: (
            before.update(_snapshot(killed))
            or (
                "cli",
                ["cluster", str(images), "-k", "3", "-o", str(killed), *base, "--overwrite"],
                {"context": _full_disk, "check": full_disk_left_as_it_was},
            )
        ),
    )
    odd_out = os.fsdecode(os.fsencode(str(tmp)) + b"/out-\xff")
    yield (
        "cli: a non-UTF-8 OUT_DIR, strict stdout",
        lambda: (
            "cli",
            ["cluster", str(images), "-k", "2", "-o", odd_out, *base],
            {"expect": "ok", "context": _strict_stdout},
        ),
    )
    same = tmp / "same"
    same.mkdir()
    for i in range(12):
        (same / f"{i}.png").write_bytes((images / rel[0]).read_bytes())
    yield (
        "cli: 12 copies of one image, --map tsne",
        cluster("--map", "tsne", folder=same, expect="ok"),
    )
    # records
    model_dir = tmp / "model"
    model_dir.mkdir()

    def local_dir_recorded():
        import torch
        from safetensors.torch import save_file

        state = torch.load(tiny_weights_file(), weights_only=True)
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            model_dir / "open_clip_model.safetensors",
        )
        cfg = {"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}
        (model_dir / "open_clip_config.json").write_text(json.dumps(cfg))
        o = out()
        argv = ["cluster", str(images), "-k", "2", "-o", o, *base]
        argv[argv.index("--model") + 1] = f"local-dir:{model_dir}"
        argv[argv.index("--pretrained") + 1] = "openai"

        def recorded():
            doc = json.loads((Path(o) / "clusters.json").read_text())
            _check(doc["pretrained"] == str(model_dir.resolve()), f"recorded {doc['pretrained']}")

        return "cli", argv, {"expect": "ok", "check": recorded}

    yield "cli: a local-dir model, pretrained recorded", local_dir_recorded

    def estimate_names_the_device():
        from skgradnorm._cli import main

        argv = ["cluster", str(images), "-k", "2", "-o", out(), *base, "--n-centers", "2"]
        argv.remove("--quiet")
        argv[argv.index("--cache-dir") + 1] = str(tmp / "fresh-cache")  # nouns not cached
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(argv)
        text = err.getvalue()
        step = [line for line in text.splitlines() if "distinct nouns" in line]
        _check(code == 0, f"exit {code}")
        _check(len(step) == 1 and " on cpu" in step[0], f"the estimate said {step}")
        _check("None" not in text and "Warning" not in text, "a second estimate, or 'on None'")

    yield "cli: one noun-cost estimate, naming the device", estimate_names_the_device
    # demo
    for argv in (
        ["--n-samples", "1"],
        ["--n-classes", "1000", "--n-samples", "10"],
        ["--seed", "-5"],
        ["--n-samples", "100000000000"],
    ):
        yield f"cli: demo {' '.join(argv)}", lambda a=argv: ("cli", ["demo", "-o", out(), *a], {})
    yield from embed_cases(tmp, images, vocab, base, out)


def embed_cases(tmp: Path, images: Path, vocab: Path, base: list, out):
    """``skgradnorm embed`` and embeddings folders (needs dask; skipped without it)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return
    from _clip_fixtures import tiny_weights_file

    model = base[: base.index("--quiet")]
    yield (
        "cli: embed --scheduler FILE that does not exist",
        lambda: (
            "cli",
            ["embed", str(images), "-o", out(), *model, "--scheduler", str(tmp / "sched.json")],
            {"seconds": 10.0},
        ),
    )
    emb = Path(out())

    def other_model():
        import torch

        from skgradnorm._cli import main

        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            if main(["embed", str(images), "-o", str(emb), *model]) != 0:
                raise RuntimeError("embed failed")
        state = torch.load(tiny_weights_file(), weights_only=True)
        other = tmp / "other.pt"
        torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, other)
        argv = ["cluster", "--embeddings", str(emb), "-k", "2", "-o", out(), *base]
        argv[argv.index("--pretrained") + 1] = str(other)
        return "cli", argv, {}

    yield "cli: --embeddings EMB_DIR of another model", other_model

    def edited_in_place():
        from PIL import Image

        from skgradnorm._clip._encoder import CLIPEncoder
        from skgradnorm.distributed import embed_directory

        folder = tmp / "edit_imgs"
        folder.mkdir()
        for p in images.iterdir():
            (folder / p.name).write_bytes(p.read_bytes())
        enc = CLIPEncoder("skgradnorm-tiny", pretrained=tiny_weights_file(), cache_dir=False)
        target = tmp / "edit_emb"
        _, paths = embed_directory(folder, target, encoder=enc, partition_size=4)
        Image.fromarray(np.full((24, 24, 3), 255, np.uint8)).save(folder / Path(paths[0]).name)
        U, paths = embed_directory(folder, target, encoder=enc, partition_size=4)
        fresh = enc.transform([paths[0]])[0]
        _check(np.allclose(U.compute()[0], fresh, atol=1e-6), "the old embedding was kept")

    yield "embed: resumed after an image was edited in place", edited_in_place


# --------------------------------------------------------------------------- the runner


def _classify(outcome):
    """Run one case; return (kind, detail)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = outcome()
    except Silent as exc:
        return "silent", str(exc)
    except CLEAR_TYPES as exc:
        # scikit-learn's own input errors (NaN, 1-D arrays) span a few lines: still clear
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return "clear", f"{type(exc).__name__}: {lines[0] if lines else ''}"
    except Exception as exc:  # noqa: BLE001 - the point is to catch everything
        if type(exc).__module__.startswith("skgradnorm"):
            return "clear", f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return "traceback", "".join(traceback.format_exception_only(exc)).strip()
    if isinstance(result, tuple) and result and result[0] == "cli":
        return _run_cli(result[1], **(result[2] if len(result) > 2 else {}))
    return "handled", ""


def _run_cli(argv, expect="error", context=None, check=None, seconds=None):
    """Run the command line. ``expect="error"``: one ``error:`` line and exit status 2 is
    clear; ``"ok"``: exit status 0 (and ``check()`` passing) is handled. ``context``
    makes what the case simulates (a full disk, a read-only folder); ``seconds`` is the
    most the answer may take."""
    from skgradnorm._cli import main

    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with context() if context is not None else contextlib.nullcontext():
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own usage errors
                code = exc.code
            except Exception as exc:  # noqa: BLE001
                return "traceback", f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    text = err.getvalue().strip()
    try:
        if check is not None:
            check()
    except Silent as exc:
        return "silent", str(exc)
    if seconds is not None and elapsed > seconds:
        return "silent", f"answered after {elapsed:.1f} s (more than {seconds:g} s)"
    if expect == "ok":  # a valid (if unusual) input: refusing it is a defect too
        if code == 0:
            return "handled", ""
        kind = "silent" if code == 2 and "Traceback" not in text else "traceback"
        return kind, f"refused, exit {code}: {text[-200:]}"
    if code == 2 and "error:" in text and "Traceback" not in text:
        return "clear", text.splitlines()[-1]
    if code == 0:
        return "silent", "exit status 0 for bad input"
    return "traceback", f"exit {code}: {text[-200:]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    tally = {"clear": 0, "handled": 0, "traceback": 0, "silent": 0}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        groups = (estimator_cases(), image_cases(tmp / "img"), cli_cases(tmp / "cli"))
        (tmp / "img").mkdir()
        (tmp / "cli").mkdir()
        for cases in groups:
            for name, case in cases:
                kind, detail = _classify(case)
                tally[kind] += 1
                if args.verbose or kind in ("traceback", "silent"):
                    print(f"{kind:<9} {name}: {detail}")
    tried = sum(tally.values())
    print(
        f"tried {tried}: {tally['clear']} clear, {tally['handled']} handled, "
        f"{tally['traceback']} traceback, {tally['silent']} silent"
    )
    return 0 if tally["traceback"] == tally["silent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
