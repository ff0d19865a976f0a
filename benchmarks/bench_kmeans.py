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

Time-to-objective (project issue 18), the package against ``faiss.Kmeans`` at faiss's
defaults (25 iterations, random seeding, at most 256 training rows per centre), each on 1
thread and on 2, side by side (see :func:`to_objective`; ~1, ~5 and ~10 minutes on 2 busy
cores)::

    nice -n 5 .venv/bin/python benchmarks/bench_kmeans.py --to-objective --threads 2 --scale d128
    nice -n 5 .venv/bin/python benchmarks/bench_kmeans.py --to-objective --threads 2 --scale a
    nice -n 5 .venv/bin/python benchmarks/bench_kmeans.py --to-objective --threads 2 \
        --scale b_sample

Scales: ``small`` 50,000 x 256 into 200 clusters (max_iter 30, n_init 1); ``a`` 50,000 x
1,024 into 1,000 (max_iter 20, n_init 1); ``b`` 1,280,000 x 512 into 2,000, the centre step
at ImageNet-1K scale (max_iter 10, n_init 1 for all alike: one Lloyd pass costs ~2.6 TFLOP,
15-30 s on 2 cores); ``d128`` 60,000 x 128 into 300 (max_iter 25, n_init 1);
``b_sample`` 64,000 rows of ``b``'s distribution into 2,000: the training sample of a fit at
``b`` with 32 rows per centre, for a time-to-objective at that shape on 2 busy cores (the
final labelling of the 1.28M rows, one search pass for either, is left out). At ``b``,
``faiss[init=kmeans++]`` is left out by default (its k-means++ makes 2,000 passes over the
1.28M rows). ``--subsample`` runs the package with
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
from pathlib import Path

# the package of this checkout (also in the workers, which run this file)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import lifetime_peak_rss, peak_rss, reset_peak_rss  # noqa: E402

SCALES = {
    # name: (n_samples, n_features, n_clusters, n_true_clusters, max_iter, n_init)
    "d128": (60_000, 128, 300, 300, 25, 1),
    "small": (50_000, 256, 200, 200, 30, 1),
    "a": (50_000, 1_024, 1_000, 1_000, 20, 1),
    "b": (1_280_000, 512, 2_000, 1_000, 10, 1),
    # b's distribution (same generator and seed), 64,000 rows: the sample a fit at b trains
    # on at 32 rows per centre
    "b_sample": (64_000, 512, 2_000, 1_000, 10, 1),
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
        trace = _PackageTrace(skm, n, enabled=bool(args.trace))
        original = skm.pooled_kmeans_plusplus

        def timed_kmeans_plusplus(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                seeding[0] += time.perf_counter() - t0

        skm.pooled_kmeans_plusplus = timed_kmeans_plusplus
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
        trace.reset()

        def run():
            trace.start()
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
            from skgradnorm._cluster._kmeans import default_init_size, draw_rows
            from skgradnorm._cluster._seeding import pooled_kmeans_plusplus

            rng = np.random.RandomState(seed)
            run_rng = np.random.RandomState(rng.randint(np.iinfo(np.int32).max, size=1)[0])
            rows = draw_rows(n, default_init_size(n, k), run_rng)
            Xs = torch.from_numpy(X if rows is None else X[rows])
            return pooled_kmeans_plusplus(Xs, k, run_rng)[0].numpy()

        if opts.get("init") == "package":  # warm-up (imports, thread pools) outside the timing
            from skgradnorm._cluster._seeding import pooled_kmeans_plusplus

            pooled_kmeans_plusplus(torch.from_numpy(X[:2000]), 4, np.random.RandomState(0))

        def run():
            params = dict(niter=max_iter, nredo=n_init, spherical=True)
            if "seed" not in opts:  # faiss[seed=default]: faiss's own default seed
                params["seed"] = seed + 1
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
        info.update(trace.result(args.trace))
    np.save(args.out, np.asarray(centers, dtype=np.float32))
    print(json.dumps({"seconds": seconds, "peak_extra_bytes": peak_extra, **info}))


class _PackageTrace:
    """Times (and centres) of every Lloyd iteration of a package fit, for time-to-objective.

    Wraps the package's ``_lloyd_iter`` and ``assign``: after iteration ``i`` it records
    the time since the start of the fit and the objective of the centres the iteration
    assigned with (over the fitting rows: all of them unless ``max_samples``), and, when
    the fit runs on a subsample, the new centres (their objective over all the rows is
    computed afterwards, outside the timing), and the duration of the final labelling of
    all the rows.
    """

    def __init__(self, skm, n, *, enabled):
        self.n, self.enabled = n, enabled
        self.reset()
        if not enabled:
            return
        lloyd, assign = skm._lloyd_iter, skm.assign

        def traced_lloyd(X, centers, *a, **kw):
            kw.setdefault("info", {})
            out = lloyd(X, centers, *a, **kw)
            import torch

            obj = float(kw["info"]["best"].sum(dtype=torch.float64))
            self.iters.append((time.perf_counter() - self.t0, obj, int(X.shape[0])))
            if X.shape[0] < self.n:
                self.centers.append(out[0].numpy().copy())
            return out

        def traced_assign(X, *a, **kw):
            t = time.perf_counter()
            out = assign(X, *a, **kw)
            if X.shape[0] == self.n:
                self.assign_all.append(time.perf_counter() - t)
            return out

        skm._lloyd_iter, skm.assign = traced_lloyd, traced_assign

    def reset(self):
        self.iters, self.centers, self.assign_all = [], [], []
        self.t0 = time.perf_counter()

    def start(self):
        self.reset()

    def result(self, path):
        if not self.enabled:
            return {}
        if self.centers:
            np.save(path, np.stack(self.centers))
        return {"iters": self.iters, "assign_all": self.assign_all[-1:]}


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


#: ``--to-objective``: the shapes and the package's settings. At ``b`` faiss's defaults train
#: on 256 rows per centre (512,000 rows); the package fits on as many (``max_samples``).
TO_OBJECTIVE = {
    "d128": "package[tol=1e-4]",
    "a": "package[tol=1e-4]",
    "b": "package[tol=1e-4,max_samples=512000]",
    # at most 10 iterations: time-to-objective only needs the first that reaches faiss's
    "b_sample": "package[tol=1e-4,max_iter=10]",
}


def _load():
    return os.getloadavg()[0]


def to_objective(scale, *, threads_list, repeats=1, seed=0, package=None):
    """Time-to-objective of the package against faiss's defaults, per thread count.

    faiss runs ``faiss.Kmeans(d, k, niter=25, spherical=True)`` (its defaults: random
    seeding, at most 256 training rows per centre, seed 1234), then one search for the
    labels; its objective over all the rows is the target. The package runs
    :func:`skgradnorm.spherical_kmeans` (``max_iter=25``, its default ``tol``, one restart)
    with its Lloyd iterations traced; its time-to-objective is the time from the start of
    the fit to the end of the first iteration whose centres reach the target over all the
    rows, plus (with ``max_samples``) the final labelling of all the rows. faiss's is its
    whole time. Both are interleaved over thread counts and rounds.
    """
    n, d, k, n_true, _, _ = SCALES[scale]
    package = package or TO_OBJECTIVE.get(scale, "package[tol=1e-4]")
    t0 = time.perf_counter()
    X = make_data(n, d, n_true, seed=seed)
    print(
        f"data: {n:,} x {d:,} float32 unit rows, {n_true:,} true clusters, k={k:,} "
        f"({time.perf_counter() - t0:.0f} s to make); package: {package}; "
        f"threads {threads_list}; {repeats} round(s)",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "X.npy")
        np.save(data, X)
        for r in range(repeats):
            for threads in threads_list:
                row = {"round": r + 1, "threads": threads}
                for name in ("faiss[default,seed=default]", package):
                    res, centers = _child(name, data, tmp, k=k, seed=seed, threads=threads)
                    row[name.split("[")[0]] = res
                    res["objective"] = objective(X, centers)
                target = row["faiss"]["objective"]
                row["package"]["to_objective"] = _package_time_to(
                    row["package"], X, target, os.path.join(tmp, "trace.npy")
                )
                rows.append(row)
                _print_to_objective_row(row, n)
    _print_to_objective_summary(rows, n)
    return rows


def _child(name, data, tmp, *, k, seed, threads, max_iter=25):
    out = os.path.join(tmp, "centers.npy")
    cmd = [sys.executable, __file__, "--worker", name, "--data", data, "--out", out]
    cmd += [f"--k={k}", f"--max-iter={max_iter}", "--n-init=1", f"--threads={threads}"]
    cmd += [f"--seed={seed}", "--trace", os.path.join(tmp, "trace.npy")]
    load = _load()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["load"] = (load, _load())
    return res, np.load(out)


def _package_time_to(res, X, target, trace_path):
    """Seconds the package took to reach ``target`` (None if it did not), from its trace."""
    iters = res["iters"]
    if iters and iters[0][2] == X.shape[0]:  # fitted on all rows: objectives already known
        # iteration i assigned with the centres of iteration i - 1; the final E-step (or
        # the iteration that found the fixed point) gives the final objective, at the end
        for i, (t, obj, _) in enumerate(iters):
            if obj >= target:
                res["iters_to"] = i
                return t
    else:  # on a subsample: the centres of every iteration over all the rows
        centers = np.load(trace_path)
        objs = {}

        def reached(i):
            if i not in objs:
                objs[i] = objective(X, centers[i])
            return objs[i] >= target

        lo, hi = 0, len(centers) - 1  # the objective over all rows rises with the iterations
        if reached(hi):
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if reached(mid) else (mid + 1, hi)
            res["iters_to"] = lo + 1
            return iters[lo][0] + res["assign_all"][-1]
    if res["objective"] >= target:
        res["iters_to"] = res["n_iter"]
        return res["seconds"]
    return None


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def _print_to_objective_row(row, n):
    f, p = row["faiss"], row["package"]
    print(
        f"  round {row['round']}, {row['threads']} thread(s): faiss {f['seconds']:.2f} s "
        f"({f['n_iter']} iterations, objective/row {f['objective'] / n:.5f}, "
        f"load {f['load'][0]:.1f}-{f['load'][1]:.1f}); "
        f"package to faiss's objective {_fmt(p['to_objective'])} s after "
        f"{p.get('iters_to', '-')} iteration(s), whole fit {p['seconds']:.2f} s "
        f"(seeding {p['seeding']:.2f} s, {p['n_iter']} iterations, objective/row "
        f"{p['objective'] / n:.5f}, {100 * (p['objective'] / f['objective'] - 1):+.2f}%; "
        f"load {p['load'][0]:.1f}-{p['load'][1]:.1f})",
        flush=True,
    )


def _print_to_objective_summary(rows, n):
    print()
    print(
        f"{'threads':>7} {'faiss (s)':>9} {'package to':>10} {'ratio':>6} {'package':>8} "
        f"{'seeding':>7} {'iters':>5} {'n_iter':>6} {'faiss obj':>9} {'package obj':>11} "
        f"{'load':>9}"
    )
    print(
        f"{'':>7} {'':>9} {'obj. (s)':>10} {'':>6} {'whole (s)':>8} {'(s)':>7} {'to':>5} "
        f"{'':>6} {'/row':>9} {'/row':>11} {'':>9}"
    )
    by_threads = {}
    for row in rows:
        by_threads.setdefault(row["threads"], []).append(row)
    for threads, rs in by_threads.items():
        med = lambda xs: float(np.median(xs)) if xs and None not in xs else None  # noqa: E731
        faiss_s = med([r["faiss"]["seconds"] for r in rs])
        to = med([r["package"]["to_objective"] for r in rs])
        ratio = med(
            [
                None
                if r["package"]["to_objective"] is None
                else r["package"]["to_objective"] / r["faiss"]["seconds"]
                for r in rs
            ]
        )
        loads = [x for r in rs for x in r["faiss"]["load"] + r["package"]["load"]]
        print(
            f"{threads:>7} {faiss_s:>9.2f} {_fmt(to):>10} {_fmt(ratio):>6} "
            f"{med([r['package']['seconds'] for r in rs]):>8.2f} "
            f"{med([r['package']['seeding'] for r in rs]):>7.2f} "
            f"{rs[0]['package'].get('iters_to', '-'):>5} {rs[0]['package']['n_iter']:>6} "
            f"{rs[0]['faiss']['objective'] / n:>9.5f} {rs[0]['package']['objective'] / n:>11.5f} "
            f"{min(loads):>4.1f}-{max(loads):<4.1f}"
        )
    if len(by_threads) > 1:
        (t1, r1), (t2, r2) = list(by_threads.items())[:2]
        for what, key in (("whole fit", "seconds"), ("time-to-objective", "to_objective")):
            ratios = [
                b["package"][key] / a["package"][key]
                for a, b in zip(r1, r2, strict=False)
                if a["package"][key] and b["package"][key]
            ]
            if ratios:
                print(
                    f"package {what}, {t2} threads over {t1}: {np.median(ratios):.2f} "
                    f"(per round: {', '.join(f'{x:.2f}' for x in ratios)})"
                )


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
    parser.add_argument(
        "--to-objective",
        dest="to_objective",
        action="store_true",
        help="time-to-objective against faiss's defaults, on 1 thread and on --threads",
    )
    parser.add_argument("--package", help="--to-objective: the package's settings, as an impl")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sklearn-init-size", dest="sklearn_init_size", help=argparse.SUPPRESS)
    parser.add_argument("--trace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    if args.to_objective:
        threads = sorted({1, args.threads})
        to_objective(
            args.scale, threads_list=threads, repeats=args.repeats, seed=args.seed,
            package=args.package,
        )  # fmt: skip
        return None
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
