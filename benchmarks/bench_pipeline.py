"""Retrieval and the whole GradNorm pipeline from embeddings to labels, at ImageNet-1K scale.

Project issue 5. Two measurements, each in its own child process (peak memory alone):

- **retrieval**: the text counterparts ``t = normalize(softmax(u E_sel^T / tau) E_sel)`` of
  the test images against the selected nouns (ImageNet-1K: 50,000 images, 2,000 centres x
  top_k 3 = 6,000 nouns, d = 512, tau = 0.006). ``package``:
  :func:`skgradnorm._gradnorm.text_counterparts` (torch, chunks of images, never the whole
  (images x nouns) matrix); ``numpy full matrix``: the plain formula on the whole matrix,
  as one would write it in numpy (the exact reference: outputs are compared).
- **pipeline**: what a user runs from embeddings to labels, the paper's protocol (centres
  from the training split, clustering of the test split; ``reproduce_paper.py`` does the
  same on real datasets)::

      selector = GradNormNounSelector(noun_bank, n_centers=2000, temperature=0.02, top_k=3,
                                      retrieval_temperature=0.006, concatenate=True,
                                      n_init=1, max_samples=262144, random_state=0)
      Z = selector.fit(U_train).transform(U_test)      # [u ; t], 50,000 x 1,024
      labels = SphericalKMeans(1000, n_init=3, tol=1e-4, random_state=0).fit_predict(Z)

  with 1.28M x 512 training embeddings, 117,798 nouns, 50,000 test embeddings, 1,000
  clusters. One row per stage (time, and peak memory over the stage) and one for the
  whole; "peak RSS" is the process's, including the inputs it holds (the 1.28M training
  embeddings alone are 2.6 GB of float32), "extra" the growth over what it held before.
  The final k-means keeps the paper's 300 iterations but stops a restart once the centres
  move less than ``tol`` (sum of squared shifts); its 20 restarts are cut to
  ``--final-n-init`` (3), and the note gives the objective of the first restart against the
  best, i.e. what the other restarts buy.

Synthetic data stand in for CLIP embeddings (no dataset can be downloaded here): 1,000
classes whose directions lie in a cone around a common direction (cosine of an image to its
class direction ~0.7, like image embeddings to their class mean; the generator of
``bench_kmeans.py``); training and test images are drawn from the same classes; the noun
bank has 5 nouns near each class direction, the other nouns random unit vectors. The
accuracy in the note (Hungarian matching to those classes) shows that the run clusters, not
what CLIP reaches on ImageNet.

Reproduce (2 cores)::

    .venv/bin/python benchmarks/bench_pipeline.py --scale small      # ~2 minutes
    .venv/bin/python benchmarks/bench_pipeline.py --scale imagenet   # ~15 minutes

(``benchmarks/run.py --scale imagenet`` runs it with every other benchmark.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    Row,
    format_table,
    lifetime_peak_rss,
    limit_threads,
    mib,
    peak_rss,
    report,
    reset_peak_rss,
    run_child,
)

SIZES = {
    "small": dict(
        n_train=100_000,
        n_test=10_000,
        dim=512,
        n_classes=100,
        n_nouns=20_000,
        n_centers=300,
        max_samples=40_000,
        top_k=3,
        temperature=0.02,
        retrieval_temperature=0.006,
        center_max_iter=100,
        final_n_init=3,
    ),
    "imagenet": dict(
        n_train=1_280_000,
        n_test=50_000,
        dim=512,
        n_classes=1_000,
        n_nouns=117_798,
        n_centers=2_000,
        max_samples=262_144,
        top_k=3,
        temperature=0.02,
        retrieval_temperature=0.006,
        center_max_iter=100,
        final_n_init=3,
    ),
}


def _unit(A):
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    return A


def make_world(n_train, n_test, dim, n_classes, n_nouns, seed=0, nouns_per_class=5, chunk=65536):
    """Training images, test images with their classes, and a noun bank (see module doc)."""
    rng = np.random.default_rng(seed)
    mu = _unit(rng.standard_normal((1, dim), dtype=np.float32))[0]
    C = _unit(0.6 * mu + _unit(rng.standard_normal((n_classes, dim), dtype=np.float32)))
    p = rng.dirichlet(np.full(n_classes, 5.0))
    scale = np.float32(1.0 / np.sqrt(dim))

    def images(n):
        y = rng.choice(n_classes, size=n, p=p)
        X = np.empty((n, dim), dtype=np.float32)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            B = rng.standard_normal((e - s, dim), dtype=np.float32)
            B *= scale
            B += C[y[s:e]]
            X[s:e] = _unit(B)
        return X, y

    X_train, _ = images(n_train)
    X_test, y_test = images(n_test)
    n_pos = min(n_nouns, nouns_per_class * n_classes)
    pos = C[np.arange(n_pos) % n_classes] + 0.5 * scale * rng.standard_normal(
        (n_pos, dim), dtype=np.float32
    )
    rest = rng.standard_normal((n_nouns - n_pos, dim), dtype=np.float32)
    nouns = _unit(np.vstack([pos, rest]).astype(np.float32))
    nouns = nouns[rng.permutation(n_nouns)]
    return X_train, X_test, y_test, nouns


# ------------------------------------------------------------------------------ workers
def _retrieval_worker(args, cfg):
    X = np.load(os.path.join(args.data, "X_test.npy"))
    E = np.load(os.path.join(args.data, "nouns.npy"))[: cfg["n_centers"] * cfg["top_k"]]
    tau = cfg["retrieval_temperature"]
    if args.worker == "retrieval:package":
        from skgradnorm._retrieval import text_counterparts

        text_counterparts(X[:100], E, temperature=tau, device="cpu")  # warm-up

        def run():
            return text_counterparts(X, E, temperature=tau, device="cpu")

    else:

        def run():  # the formula on the whole (images x nouns) matrix, in numpy
            S = X @ E.T
            S /= tau
            S -= S.max(axis=1, keepdims=True)
            np.exp(S, out=S)
            S /= S.sum(axis=1, keepdims=True)
            T = S @ E
            return T / np.linalg.norm(T, axis=1, keepdims=True)

    before = reset_peak_rss()
    t0 = time.perf_counter()
    T = run()
    seconds = time.perf_counter() - t0
    np.save(args.out, T)
    report({"seconds": seconds, "peak": lifetime_peak_rss(), "extra": peak_rss() - before})


def _pipeline_worker(args, cfg):
    from skgradnorm import GradNormNounSelector, SphericalKMeans
    from skgradnorm.metrics import clustering_accuracy_score

    load0 = reset_peak_rss()
    U_train = np.load(os.path.join(args.data, "X_train.npy"))
    U_test = np.load(os.path.join(args.data, "X_test.npy"))
    y_test = np.load(os.path.join(args.data, "y_test.npy"))
    bank = np.load(os.path.join(args.data, "nouns.npy"))
    inputs = sum(a.nbytes for a in (U_train, U_test, bank))
    stages = {}

    @contextlib.contextmanager
    def stage(name):
        before = reset_peak_rss()
        t0 = time.perf_counter()
        yield
        stages[name] = {
            "seconds": time.perf_counter() - t0,
            "peak": peak_rss(),
            "extra": peak_rss() - before,
        }

    selector = GradNormNounSelector(
        bank,
        n_centers=cfg["n_centers"],
        temperature=cfg["temperature"],
        top_k=cfg["top_k"],
        retrieval_temperature=cfg["retrieval_temperature"],
        concatenate=True,
        n_init=1,
        max_iter=cfg["center_max_iter"],
        max_samples=cfg["max_samples"],
        random_state=0,
        device="cpu",
    )
    t_all = time.perf_counter()
    with stage("fit selector (centres, scoring, selection)"):
        selector.fit(U_train)
    with stage("transform test images (retrieval, [u ; t])"):
        Z = selector.transform(U_test)
    final = SphericalKMeans(
        cfg["n_clusters"],
        n_init=cfg["final_n_init"],
        max_iter=300,
        tol=1e-4,
        random_state=0,
        device="cpu",
        verbose=1,  # verbose: to read each restart's objective
    )
    log = io.StringIO()
    with stage("final spherical k-means"), contextlib.redirect_stdout(log):
        labels = final.fit_predict(Z)
    total = time.perf_counter() - t_all
    restarts = [
        (float(o), int(i))
        for o, i in re.findall(r"objective=([-\d.e]+) after (\d+)", log.getvalue())
    ]
    report(
        {
            "seconds": total,
            "peak": lifetime_peak_rss(),
            "extra": lifetime_peak_rss() - load0,
            "inputs": inputs,
            "stages": stages,
            "restarts": restarts,
            "n_selected": len(selector.selected_indices_),
            "centre_iters": int(selector.n_iter_),
            "acc": float(clustering_accuracy_score(y_test, labels)),
            "n_test": len(y_test),
        }
    )


# ------------------------------------------------------------------------------- parent
def _config(scale, final_n_init=None):
    """The sizes and settings at ``scale``: one cluster per synthetic class."""
    cfg = dict(SIZES[scale], n_clusters=SIZES[scale]["n_classes"])
    if final_n_init:
        cfg["final_n_init"] = final_n_init
    return cfg


def run_suite(scale: str, threads: int, *, data_dir=None, final_n_init=None) -> list[Row]:
    """Both measurements at ``scale``; one row per implementation or pipeline stage."""
    cfg = _config(scale, final_n_init)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = data_dir or tmp
        t0 = time.perf_counter()
        if not os.path.exists(os.path.join(data, "nouns.npy")):
            parts = make_world(
                cfg["n_train"], cfg["n_test"], cfg["dim"], cfg["n_classes"], cfg["n_nouns"]
            )
            for name, a in zip(("X_train", "X_test", "y_test", "nouns"), parts, strict=False):
                np.save(os.path.join(data, f"{name}.npy"), a)
            del parts
        print(f"pipeline data ready ({time.perf_counter() - t0:.0f} s)", flush=True)
        common = [
            "--data",
            data,
            "--scale",
            scale,
            f"--threads={threads}",
            f"--final-n-init={cfg['final_n_init']}",
        ]

        n_sel = cfg["n_centers"] * cfg["top_k"]
        size = f"{cfg['n_test']:,} images x {n_sel:,} nouns, d={cfg['dim']}"
        res, outs = {}, {}
        for impl in ("package", "numpy full matrix"):
            out = os.path.join(tmp, f"T_{impl.split()[0]}.npy")
            res[impl] = run_child(
                __file__, ["--worker", f"retrieval:{impl.split()[0]}", "--out", out, *common]
            )
            outs[impl] = np.load(out)
            print(f"  retrieval, {impl}: {res[impl]['seconds']:.1f} s", flush=True)
        diff = float(np.abs(outs["package"] - outs["numpy full matrix"]).max())
        ref = res["package"]["seconds"]
        for impl, r in res.items():
            rows.append(
                Row(
                    "retrieval",
                    size,
                    impl,
                    r["seconds"],
                    mib(r["peak"]),
                    mib(r["extra"]),
                    None if impl == "package" else r["seconds"] / ref,
                    f"max abs diff {diff:.1e}" if impl == "package" else "reference",
                )
            )

        r = run_child(__file__, ["--worker", "pipeline", "--out", os.path.join(tmp, "x"), *common])
        print(f"  pipeline: {r['seconds']:.1f} s", flush=True)
    size = (
        f"{cfg['n_train']:,} train ({cfg['max_samples']:,} for the centres) "
        f"-> {cfg['n_centers']:,} "
        f"centres; {cfg['n_nouns']:,} nouns; {r['n_test']:,} test -> {cfg['n_clusters']:,} clusters"
    )
    notes = {
        "fit selector (centres, scoring, selection)": (
            f"{r['centre_iters']} centre iterations; {r['n_selected']:,} nouns kept"
        ),
        "transform test images (retrieval, [u ; t])": "",
        "final spherical k-means": _restart_note(r["restarts"]),
    }
    for name, st in r["stages"].items():
        rows.append(
            Row(
                "pipeline: " + name,
                "",
                "package",
                st["seconds"],
                mib(st["peak"]),
                mib(st["extra"]),
                None,
                notes[name],
            )
        )
    rows.append(
        Row(
            "pipeline: whole, embeddings to labels",
            size,
            "package",
            r["seconds"],
            mib(r["peak"]),
            mib(r["extra"]),
            None,
            f"inputs held: {mib(r['inputs']):,.0f} MiB; ACC {r['acc']:.3f} (synthetic classes)",
        )
    )
    return rows


def _restart_note(restarts):
    if not restarts:
        return ""
    objs = [o for o, _ in restarts]
    iters = ", ".join(str(i) for _, i in restarts)
    gain = (max(objs) - objs[0]) / abs(objs[0]) * 100
    return (
        f"{len(restarts)} restarts, iterations {iters} (tol 1e-4 of 300); best restart "
        f"+{gain:.3f}% objective over the first"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SIZES), default="small")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--final-n-init",
        dest="final_n_init",
        type=int,
        help="restarts of the final k-means (default 3)",
    )
    parser.add_argument("--data", help="directory to keep the generated data in (reused)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        limit_threads(args.threads)
        cfg = _config(args.scale, args.final_n_init)
        return (_pipeline_worker if args.worker == "pipeline" else _retrieval_worker)(args, cfg)
    rows = run_suite(args.scale, args.threads, data_dir=args.data, final_n_init=args.final_n_init)
    print(format_table(rows))


if __name__ == "__main__":
    main()
