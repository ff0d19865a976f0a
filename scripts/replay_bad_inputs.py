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
import io
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
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
        return _run_cli(result[1])
    return "handled", ""


def _run_cli(argv):
    from skgradnorm._cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        except Exception as exc:  # noqa: BLE001
            return "traceback", f"{type(exc).__name__}: {exc}"
    text = err.getvalue().strip()
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
