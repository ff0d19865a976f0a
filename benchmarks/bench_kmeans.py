"""Spherical k-means side by side: skgradnorm, faiss-cpu and scikit-learn at equal settings.

Project issue 5. Every implementation clusters the same float32 unit vectors into the same
number of clusters with the same maximum number of Lloyd iterations and restarts:

- ``package``: :func:`skgradnorm.spherical_kmeans` with its defaults:
  greedy k-means++ (scikit-learn's algorithm and draws, in torch) on ``init_size`` samples,
  then Lloyd iterations on all the rows, whose assignment passes are run by faiss's exact
  inner-product search (``backend="auto"``: faiss is installed here).
  ``package[backend=torch]``: the same with torch matrix products for the passes;
  ``package[init_size=all]``: k-means++ on every row; ``package[init_size=4096]``: on 4,096;
  ``package[max_samples=65536]``: centres fitted on 65,536 random rows, then every row
  assigned (``max_samples=all``: the plain fit);
- ``faiss``: ``faiss.Kmeans(spherical=True)`` with faiss's own (random) seeding and
  ``max_points_per_centroid`` raised so that it trains on every row (by default faiss
  subsamples to 256 rows per centre: that is ``faiss[default]``), then one search for the
  labels. ``faiss[init=kmeans++]``: faiss's own k-means++ (``init_method``, new in faiss 1.15:
  D^2 sampling without local trials, on all rows); ``faiss[init=package]``: faiss's Lloyd
  iterations from the package's seeds (same draws as ``package``);
- ``sklearn``: ``sklearn.cluster.KMeans(algorithm="lloyd")`` on the same unit rows (Euclidean
  k-means on the sphere; its centres are renormalised for the objective), with k-means++
  run on a random subsample of the package's default ``init_size`` (KMeans' ``init``
  callable), so that both seed on the same amount of data.

``[n_init=3]``, ``[max_iter=40]`` or (package, sklearn) ``[tol=1e-4]`` after a name
override the shared settings for it. The package and scikit-learn run with ``tol=0``
unless told otherwise; all three stop early once converged (the package and scikit-learn
when the labels stop changing, faiss 1.15 when its objective stops improving), so "n_iter"
can differ below ``max_iter``. The data are random unit vectors in ``n_true`` clusters of
unequal sizes, in a cone around a common direction (cosine of a row to its cluster's
direction ~0.7, like image embeddings to their class mean).

The objective is computed the same way for all, in this parent process: each
implementation's final centres are renormalised, every row is assigned to its most
cosine-similar centre and the cosines are summed (float64); the table shows it per row, and
its ratio to the first implementation listed (the reference, ``package`` by default).

Each implementation runs in its own child process, interleaved over ``--repeats`` rounds so
that load from other processes hits all of them alike. Columns: "seeding" (median) is the
initialisation (faiss random: the time of ``train`` before its first iteration; faiss
k-means++: its first iteration minus a typical one); "total" (median and min over rounds) is
the whole fit including the final labels; "ratio" is the median over rounds of total / total
of the reference in the same round; "n_iter" the Lloyd iterations run; "s/pass" = (total -
seeding) / (n_iter + 1), the fastest over rounds: one assignment pass over the rows with its
centre update; "peak extra" the growth of the child's peak resident set size during the fit
(VmHWM reset just before it) over what it held with the data loaded.

Reproduce (2 cores; the times are for this machine, which is shared and noisy)::

    .venv/bin/python benchmarks/bench_kmeans.py --scale small --repeats 5   # ~3 minutes
    .venv/bin/python benchmarks/bench_kmeans.py --scale a --repeats 3       # ~12 minutes
    .venv/bin/python benchmarks/bench_kmeans.py --scale b --repeats 1       # ~30 minutes
    .venv/bin/python benchmarks/bench_kmeans.py --scale b --repeats 1 --subsample

Scales: ``small`` 50,000 x 256 into 200 clusters (max_iter 30, n_init 1); ``a`` 50,000 x
1,024 into 1,000 (max_iter 20, n_init 1); ``b`` 1,280,000 x 512 into 2,000, the centre step
at ImageNet-1K scale (max_iter 10, n_init 1 for all alike: one Lloyd pass costs ~2.6 TFLOP,
15-30 s on 2 cores). At ``b``, ``faiss[init=kmeans++]`` is left out by default (its
k-means++ makes 2,000 passes over the 1.28M rows). ``--subsample`` runs the package with
``max_samples`` = all, 64k, 256k and 512k rows, and faiss on all rows and with its default
subsampling, to measure the effect on the objective over all rows. ``--impls`` picks the
implementations (comma-separated names as above); ``--max-iter``, ``--n-init``,
``--threads`` and ``--seed`` override the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import lifetime_peak_rss, peak_rss, reset_peak_rss

SCALES = {
    # name: (n_samples, n_features, n_clusters, n_true_clusters, max_iter, n_init)
    "small": (50_000, 256, 200, 200, 30, 1),
    "a": (50_000, 1_024, 1_000, 1_000, 20, 1),
    "b": (1_280_000, 512, 2_000, 1_000, 10, 1),
}


def make_data(n, d, n_true, seed=0, spread=1.0, cone=0.6, chunk=65536):
    """Float32 unit rows in ``n_true`` clusters of unequal sizes, in a cone (see module doc)."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d).astype(np.float32)
    mu /= np.linalg.norm(mu)
    C = rng.standard_normal((n_true, d), dtype=np.float32)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    C = cone * mu + C
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    y = rng.choice(n_true, size=n, p=rng.dirichlet(np.full(n_true, 5.0)))
    X = np.empty((n, d), dtype=np.float32)
    scale = np.float32(spread / np.sqrt(d))
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        B = rng.standard_normal((e - s, d), dtype=np.float32)
        B *= scale
        B += C[y[s:e]]
        B /= np.linalg.norm(B, axis=1, keepdims=True)
        X[s:e] = B
    return X


def objective(X, centers, chunk=16384):
    """Sum over rows of the cosine to the most similar renormalised centre (float64 sum)."""
    import torch

    C = centers.astype(np.float32)
    C = torch.from_numpy(C / np.linalg.norm(C, axis=1, keepdims=True))
    Xt = torch.from_numpy(X)
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        total += float((Xt[s : s + chunk] @ C.T).max(dim=1).values.sum(dtype=torch.float64))
    return total


def _parse_impl(name):
    """``'package[init_size=all,max_samples=65536]'`` -> ('package', {...})."""
    m = re.fullmatch(r"(\w+)(?:\[(.*)\])?", name)
    if not m:
        raise ValueError(f"bad implementation name {name!r}")
    opts = {}
    for item in filter(None, (m.group(2) or "").split(",")):
        key, _, value = item.partition("=")
        opts[key.strip()] = value.strip()
    return m.group(1), opts


def _int_or_none(value):
    return None if value in (None, "all", "None") else int(float(value))


def _worker(args):
    import torch

    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    X = np.load(args.data)
    n, d = X.shape
    k, max_iter, n_init, seed = args.k, args.max_iter, args.n_init, args.seed
    kind, opts = _parse_impl(args.worker)
    max_iter = int(opts.get("max_iter", max_iter))
    n_init = int(opts.get("n_init", n_init))
    tol = float(opts.get("tol", 0.0))  # package and sklearn: 0 = stop when labels stop changing
    info = {}

    if kind == "package":
        from skgradnorm._cluster import _kmeans as skm

        seeding = [0.0]
        original = skm.kmeans_plusplus

        def timed_kmeans_plusplus(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                seeding[0] += time.perf_counter() - t0

        skm.kmeans_plusplus = timed_kmeans_plusplus
        kwargs = {}
        if "init_size" in opts:  # "all": seed on every (fitting) row
            kwargs["init_size"] = _int_or_none(opts["init_size"]) or n
        if "max_samples" in opts:  # "all": fit on every row (the default)
            kwargs["max_samples"] = _int_or_none(opts["max_samples"])
        if "backend" in opts:
            kwargs["backend"] = opts["backend"]
        # warm-up (imports, thread pools) outside the timing
        skm.spherical_kmeans(X[:2000], 4, n_init=1, max_iter=2, random_state=0, device="cpu")
        seeding[0] = 0.0

        def run():
            centers, labels, obj, n_iter = skm.spherical_kmeans(
                X,
                k,
                n_init=n_init,
                max_iter=max_iter,
                tol=tol,
                random_state=seed,
                device="cpu",
                **kwargs,
            )
            info["n_iter"] = n_iter
            return centers

    elif kind == "faiss":
        import faiss

        faiss.omp_set_num_threads(args.threads)

        def package_seeds():
            # The package's k-means++ seeds, with the draws spherical_kmeans makes (n_init=1).
            from skgradnorm._cluster._kmeans import (
                default_init_size,
                draw_rows,
                kmeans_plusplus,
            )

            rng = np.random.RandomState(seed)
            run_rng = np.random.RandomState(rng.randint(np.iinfo(np.int32).max, size=1)[0])
            rows = draw_rows(n, default_init_size(n, k), run_rng)
            Xs = torch.from_numpy(X if rows is None else X[rows])
            return kmeans_plusplus(Xs, k, run_rng)[0].numpy()

        if opts.get("init") == "package":  # warm-up (imports, thread pools) outside the timing
            from skgradnorm._cluster._kmeans import kmeans_plusplus

            kmeans_plusplus(torch.from_numpy(X[:2000]), 4, np.random.RandomState(0))

        def run():
            params = dict(niter=max_iter, nredo=n_init, spherical=True, seed=seed + 1)
            init = opts.get("init", "random")
            init_centroids = None
            if init == "package":
                t0 = time.perf_counter()
                init_centroids = package_seeds()
                info["package_seeding"] = time.perf_counter() - t0
            elif init != "random":
                params["init_method"] = {
                    "kmeans++": faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
                    "afkmc2": faiss.ClusteringInitMethod_AFK_MC2,
                }[init]
            if "default" not in opts:
                params["max_points_per_centroid"] = -(-n // k) + 1  # train on every row
            km = faiss.Kmeans(d, k, **params)
            t0 = time.perf_counter()
            km.train(X, init_centroids=init_centroids)
            train = time.perf_counter() - t0
            stats = km.iteration_stats
            # iteration_stats[i]["time"] counts from the start of the first iteration; faiss
            # 1.15 times its k-means++/AFK-MC2 seeding inside the first iteration, so for
            # those the seeding is the first iteration minus the median of the others.
            its = [st["time"] for st in stats]
            steps = np.diff(its)
            first = its[0] - (np.median(steps) if len(steps) else 0.0)
            info["seeding"] = max(0.0, train - its[-1]) + info.pop("package_seeding", 0.0)
            if init in ("kmeans++", "afkmc2"):
                info["seeding"] += max(0.0, first)
            km.index.search(X, 1)  # the labels, as the other implementations return them
            info["n_iter"] = len(stats)
            return km.centroids

    elif kind == "sklearn":
        from sklearn.cluster import KMeans, kmeans_plusplus

        init_size = _int_or_none(opts.get("init_size", args.sklearn_init_size))
        init = "k-means++"
        if init_size is not None and init_size < n:

            def init(Xs, n_clusters, random_state):  # k-means++ on a random subsample
                rows = random_state.choice(Xs.shape[0], size=init_size, replace=False)
                return kmeans_plusplus(Xs[np.sort(rows)], n_clusters, random_state=random_state)[0]

        class TimedKMeans(KMeans):
            def _init_centroids(self, *a, **kw):
                t0 = time.perf_counter()
                try:
                    return super()._init_centroids(*a, **kw)
                finally:
                    info["seeding"] = info.get("seeding", 0.0) + time.perf_counter() - t0

        def run():
            km = TimedKMeans(
                k,
                init=init,
                n_init=n_init,
                max_iter=max_iter,
                tol=tol,
                algorithm="lloyd",
                random_state=seed,
            ).fit(X)
            info["n_iter"] = int(km.n_iter_)
            return km.cluster_centers_

    else:
        raise ValueError(f"unknown implementation {args.worker!r}")

    before = reset_peak_rss()
    t0 = time.perf_counter()
    centers = run()
    seconds = time.perf_counter() - t0
    peak_extra = max(0, peak_rss() - before)
    info["peak"] = lifetime_peak_rss()
    if kind == "package":
        info["seeding"] = seeding[0]
    np.save(args.out, np.asarray(centers, dtype=np.float32))
    print(json.dumps({"seconds": seconds, "peak_extra_bytes": peak_extra, **info}))


def _default_impls(scale, subsample):
    if subsample:
        sizes = ["all", "65536", "262144", "524288"]
        return [f"package[max_samples={m}]" for m in sizes] + ["faiss", "faiss[default]"]
    if scale == "b":
        return ["package", "package[backend=torch]", "faiss", "sklearn"]
    return [
        "package",
        "package[backend=torch]",
        "package[init_size=all]",
        "package[init_size=4096]",
        "faiss",
        "faiss[init=kmeans++]",
        "sklearn",
    ]


def measure(
    scale, impls, *, repeats=1, threads=None, seed=0, max_iter=None, n_init=None, verbose=True
):
    """Run ``impls`` at ``scale`` in interleaved rounds; results and objectives per impl."""
    threads = threads or os.cpu_count()
    n, d, k, n_true, default_iter, default_init = SCALES[scale]
    max_iter = max_iter or default_iter
    n_init = n_init or default_init
    from skgradnorm._cluster._kmeans import default_init_size

    init_size = default_init_size(n, k)
    t0 = time.perf_counter()
    X = make_data(n, d, n_true, seed=seed)
    if verbose:
        print(
            f"data: {n} x {d} float32 unit rows, {n_true} true clusters "
            f"({time.perf_counter() - t0:.0f} s to make)"
        )
        print(
            f"k={k}, max_iter={max_iter}, n_init={n_init}, tol=0, {threads} threads, "
            f"seed={seed}, package default init_size={init_size}, "
            f"{repeats} interleaved round(s)"
        )
    runs = {name: [] for name in impls}
    objectives = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "X.npy")
        np.save(data, X)
        for r in range(repeats):
            for name in impls:
                out = os.path.join(tmp, "centers.npy")
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--data",
                    data,
                    "--out",
                    out,
                    f"--k={k}",
                    f"--max-iter={max_iter}",
                    f"--n-init={n_init}",
                    f"--threads={threads}",
                    f"--seed={seed}",
                    f"--sklearn-init-size={init_size}",
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{name} failed:\n{proc.stderr[-3000:]}", flush=True)
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if name not in objectives:
                    objectives[name] = objective(X, np.load(out))
                runs[name].append(res)
                if verbose:
                    print(f"  round {r + 1}: {name}: {res['seconds']:.1f} s", flush=True)
    meta = dict(n=n, d=d, k=k, max_iter=max_iter, n_init=n_init, data_bytes=X.nbytes)
    return runs, objectives, meta


#: What ``benchmarks/run.py`` runs: (scale, implementations) per suite scale.
SUITE = {
    "small": [("small", ["package", "faiss", "sklearn", "package[max_samples=16384]"])],
    "imagenet": [
        ("a", ["package", "faiss", "sklearn"]),
        ("b", ["package", "faiss", "sklearn", "package[max_samples=262144]", "faiss[default]"]),
    ],
}


def run_suite(scale, threads):
    """The k-means rows of ``benchmarks/run.py`` (one round each)."""
    from _common import Row, mib

    rows = []
    for kscale, impls in SUITE[scale]:
        runs, objectives, m = measure(kscale, impls, threads=threads)
        ref = impls[0]
        size = (
            f"{m['n']:,} x {m['d']:,} -> {m['k']:,}, {m['max_iter']} iterations, "
            f"{m['n_init']} restart(s)"
        )
        step = "spherical k-means" + (" (centre step)" if kscale == "b" else "")
        for name in impls:
            if not runs[name]:
                continue
            res = runs[name][0]
            rel = (objectives[name] / objectives[ref] - 1) * 100
            note = (
                f"objective/row {objectives[name] / m['n']:.5f}"
                if name == ref
                else f"objective {rel:+.2f}%"
            )
            note += f"; {res.get('n_iter', '?')} iterations"
            rows.append(
                Row(
                    step,
                    size,
                    name,
                    res["seconds"],
                    mib(res.get("peak", float("nan"))),
                    mib(res["peak_extra_bytes"]),
                    None if name == ref else res["seconds"] / runs[ref][0]["seconds"],
                    note,
                )
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--impls", help="comma-separated implementations (see the module doc)")
    parser.add_argument("--subsample", action="store_true", help="max_samples sweep of the package")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-iter", dest="max_iter", type=int)
    parser.add_argument("--n-init", dest="n_init", type=int)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sklearn-init-size", dest="sklearn_init_size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    impls = args.impls.split(",") if args.impls else _default_impls(args.scale, args.subsample)
    runs, objectives, meta = measure(
        args.scale,
        impls,
        repeats=args.repeats,
        threads=args.threads,
        seed=args.seed,
        max_iter=args.max_iter,
        n_init=args.n_init,
    )
    _print_table(impls, runs, objectives, meta["n"])


def _print_table(impls, runs, objectives, n):
    ref = impls[0]
    print()
    print(
        f"{'implementation':<28} {'seeding':>8} {'total':>8} {'(min)':>8} {'ratio':>6} "
        f"{'n_iter':>6} {'s/pass':>6} {'objective/row':>13} {'obj. ratio':>10} "
        f"{'peak extra':>10}"
    )
    print(
        f"{'':<28} {'(s)':>8} {'(s)':>8} {'(s)':>8} {'':>6} {'':>6} {'(s)':>6} {'':>13} "
        f"{'':>10} {'(MiB)':>10}"
    )
    for name in impls:
        rs = runs[name]
        if not rs:
            print(f"{name:<28} failed")
            continue
        secs = [x["seconds"] for x in rs]
        seed_s = float(np.median([x.get("seeding", float("nan")) for x in rs]))
        ratios = [x["seconds"] / y["seconds"] for x, y in zip(rs, runs[ref], strict=False)]
        ratio = float(np.median(ratios)) if ratios else float("nan")
        peak = max(x["peak_extra_bytes"] for x in rs) / 2**20
        obj_ratio = objectives[name] / objectives[ref] if ref in objectives else float("nan")
        n_iter = rs[0].get("n_iter", 0)
        per_pass = min((x["seconds"] - x.get("seeding", 0.0)) / (x["n_iter"] + 1) for x in rs)
        print(
            f"{name:<28} {seed_s:>8.2f} {np.median(secs):>8.2f} {min(secs):>8.2f} "
            f"{ratio:>6.2f} {n_iter:>6} {per_pass:>6.2f} {objectives[name] / n:>13.6f} "
            f"{obj_ratio:>10.5f} {peak:>10.0f}"
        )


if __name__ == "__main__":
    main()
