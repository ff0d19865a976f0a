"""The approximate (IVF) neighbour search at ImageNet-1K shape: time, and recall@k against exact.

``MutualDistillationClusterer`` pairs every sample with one of its 50 nearest neighbours in
each modality. This measures, on ``--n`` unit rows of dimension ``--d`` (default: the
ImageNet-1K training set's 1,281,167 x 512) and ``--threads`` threads:

- the exact search's time, extrapolated (linearly in the queries) from ``--queries``
  timed queries against all rows (faiss ``IndexFlatIP``; torch's matrix products on a
  quarter of them), and its neighbours for those queries;
- recall@k of the IVF (``nearest_neighbors(..., algorithm="ivf")``) for those queries,
  for several ``n_probe`` (one faiss ``IndexIVFFlat`` on the package's coarse centres,
  searched for the sampled queries only: a cheap recall-versus-cost curve);
- the full IVF search of all rows at the defaults (or ``--n-probe``), timed, for each of
  ``--backends`` (torch and faiss), with its recall on the sampled queries;
- with ``--refine-rounds R``: ``nearest_neighbors(..., algorithm="nndescent")`` taken
  apart: the IVF graph at ``--refine-probe`` (default 4), timed, then up to ``R``
  NN-descent rounds (``_cluster/_graph_refine.py``), each timed, with recall@k and the
  share of same-class neighbours after every round (computing those is not timed);
- with ``--refine-start hnsw``: the rounds start from faiss's HNSW search of every row
  (``nearest_neighbors(..., algorithm="hnsw")``: ``IndexHNSWSQ`` with 8-bit codes, 48
  links, 64 construction candidates, 64 search candidates) instead of the IVF graph, and
  the rounds sample 6 reverse neighbours per join set (``HNSW_N_REVERSE``), as the package;
- with ``--faiss-nndescent ITERS``: faiss's ``IndexNNDescentFlat`` (inner product, its
  default parameters, ``ITERS`` iterations from a random graph), timed, for comparison.

The rows are a CLIP-like world, generated here in chunks (float32, 2.6 GB at the full
shape): 1,000 classes in superclasses of 10 (a class direction shares 40% of its
superclass's), 1 to 3 visual modes per class, a within-class variation of rank 24 in a
subspace of its own, a variation of rank 32 shared by all classes (pose, light), power-law
spectra, and a small isotropic residual. The 20-NN purity (share of a row's 20 exact
neighbours of its class) is measured on the sampled queries and printed. The recall of an
IVF depends on the data's intrinsic dimension: real features may be easier or harder.

Command (about 20 minutes on 2 busy cores; under 8 GB)::

    nice -n 5 .venv/bin/python benchmarks/bench_neighbors.py --threads 2

A quick check: ``--n 200000``. ``--json FILE`` writes the figures. The world is kept in
``--cache`` (default ``~/.cache/skgradnorm-bench``; ``--cache ''`` keeps nothing).
The refinement alone, at 200,000 rows (``--backends ''`` skips the full IVF searches,
``--probes ''`` the recall curve)::

    nice -n 5 .venv/bin/python benchmarks/bench_neighbors.py --n 200000 --probes 4 \
        --backends '' --refine-rounds 4
    nice -n 5 .venv/bin/python benchmarks/bench_neighbors.py --n 200000 --probes '' \
        --backends '' --refine-rounds 4 --refine-start hnsw
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def clip_like_world(n, d, n_classes, seed, *, local_rank=24, shared_rank=32):
    """Unit float32 rows and their classes (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(seed)

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    def spectrum(r):
        s = np.arange(1, r + 1) ** -0.5
        return s / np.linalg.norm(s)

    n_super = -(-n_classes // 10)
    sup = unit(rng.standard_normal((n_super, d)))
    cls = unit(np.sqrt(0.4) * sup[np.arange(n_classes) // 10] + np.sqrt(0.6) * unit(
        rng.standard_normal((n_classes, d))))  # fmt: skip
    shared = np.linalg.qr(rng.standard_normal((d, shared_rank)))[0]
    y = rng.randint(n_classes, size=n)
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(n_classes + 1))
    X = np.empty((n, d), dtype=np.float32)
    with threadpool_limits(1):  # many small products: BLAS threads only contend
        for c in range(n_classes):
            rows = order[bounds[c] : bounds[c + 1]]
            m = rows.size
            modes = unit(rng.standard_normal((rng.randint(1, 4), d)))
            local = np.linalg.qr(rng.standard_normal((d, local_rank)))[0]
            v = cls[c] + 0.6 * modes[rng.randint(len(modes), size=m)]
            v += 3.0 * (rng.standard_normal((m, local_rank)) * spectrum(local_rank)) @ local.T
            v += 2.0 * (rng.standard_normal((m, shared_rank)) * spectrum(shared_rank)) @ shared.T
            v += 0.6 * rng.standard_normal((m, d)) / np.sqrt(d)
            X[rows] = unit(v)
    return X, y


def cached_world(n, d, n_classes, seed, cache_dir):
    """:func:`clip_like_world`, kept in ``cache_dir`` (``.npy`` files) once made; None: no cache."""
    if cache_dir is None:
        return clip_like_world(n, d, n_classes, seed)
    stem = os.path.join(cache_dir, f"world-{n}x{d}-c{n_classes}-s{seed}")
    if os.path.exists(stem + "-y.npy"):
        return np.load(stem + "-X.npy"), np.load(stem + "-y.npy")
    X, y = clip_like_world(n, d, n_classes, seed)
    os.makedirs(cache_dir, exist_ok=True)
    np.save(stem + "-X.npy", X)
    np.save(stem + "-y.npy", y)  # written last: its presence marks a complete pair
    return X, y


def recall(got, exact):
    return float(
        np.mean([np.intersect1d(g, e).size / e.size for g, e in zip(got, exact, strict=True)])
    )


def exact_part(X, queries, k):
    """Exact neighbours of ``queries`` (self dropped), and the time per query (faiss, torch)."""
    import faiss
    import torch

    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X)
    t0 = time.perf_counter()
    _, hits = index.search(X[queries], k + 1)
    faiss_per_query = (time.perf_counter() - t0) / queries.size
    few = queries[: max(1, queries.size // 4)]
    Xt = torch.from_numpy(X)
    t0 = time.perf_counter()
    for sl in range(0, few.size, 128):
        torch.topk(Xt[few[sl : sl + 128]] @ Xt.T, k + 1, dim=1)
    torch_per_query = (time.perf_counter() - t0) / few.size
    exact = np.array([h[h != q][:k] for h, q in zip(hits, queries, strict=True)])
    return exact, faiss_per_query, torch_per_query


def probe_curve(X, queries, exact, k, n_probes, seed):
    """Recall@k of the IVF for each ``n_probe``, searching the sampled queries only."""
    import faiss

    from skgradnorm._cluster._ann import coarse_centers, default_n_lists

    n_lists = default_n_lists(X.shape[0])
    t0 = time.perf_counter()
    centers = coarse_centers(X, n_lists, seed, "cpu", "faiss")
    coarse_s = time.perf_counter() - t0
    quantizer = faiss.IndexFlatIP(X.shape[1])
    quantizer.add(centers)
    index = faiss.IndexIVFFlat(quantizer, X.shape[1], n_lists, faiss.METRIC_INNER_PRODUCT)
    index.add(X)
    curve = []
    for p in n_probes:
        index.nprobe = p
        t0 = time.perf_counter()
        _, hits = index.search(X[queries], k + 1)
        per_query = (time.perf_counter() - t0) / queries.size
        got = [h[h != q][:k] for h, q in zip(hits, queries, strict=True)]
        curve.append({"n_probe": p, "recall": recall(got, exact), "s_per_query": per_query})
    return n_lists, coarse_s, curve


def _hnsw_start(X, k):
    """faiss's HNSW search of every row (``_cluster/_hnsw.py``), the row itself dropped."""
    from skgradnorm._cluster._hnsw import hnsw_neighbors
    from skgradnorm._cluster._neighbors import drop_self

    return drop_self(hnsw_neighbors(X, k + 1), k)


def refine_part(X, y, queries, exact, k, n_probe, rounds, seed, start_with="ivf"):
    """The IVF graph at ``n_probe`` (or faiss's HNSW search), then NN-descent rounds: time,
    recall, same-class share."""
    import torch

    from skgradnorm._cluster._graph_refine import refine_graph
    from skgradnorm._cluster._neighbors import HNSW_N_REVERSE, nearest_neighbors

    def quality(graph):
        got = graph[queries]
        return recall(got, exact), float(np.mean(y[got] == y[queries, None]))

    t0 = time.perf_counter()
    if start_with == "hnsw":
        graph = _hnsw_start(X, k)
    else:
        graph = nearest_neighbors(
            X, k, algorithm="ivf", backend="torch", device="cpu", n_probe=n_probe,
            random_state=seed,
        )  # fmt: skip
    start = {"seconds": time.perf_counter() - t0, "n_probe": n_probe, "start": start_with}
    start["recall"], start["purity"] = quality(graph)
    what = "HNSW (faiss)" if start_with == "hnsw" else f"IVF n_probe {n_probe}"
    print(f"nndescent start: {what}, {start['seconds']:.0f} s, recall@{k} "
          f"{start['recall']:.4f}, same-class {start['purity']:.3f}", flush=True)  # fmt: skip
    out = {"start": start, "rounds": []}
    clock = [time.perf_counter()]

    def record(r, indices, changed):
        seconds = time.perf_counter() - clock[0]
        row = {"round": r, "seconds": seconds, "changed": changed}
        row["recall"], row["purity"] = quality(indices.numpy())
        out["rounds"].append(row)
        print(f"  round {r}: {seconds:.0f} s, {changed:,} entries changed, recall@{k} "
              f"{row['recall']:.4f}, same-class {row['purity']:.3f}", flush=True)  # fmt: skip
        clock[0] = time.perf_counter()

    kw = {"n_reverse": HNSW_N_REVERSE} if start_with == "hnsw" else {}  # as the package
    refine_graph(torch.from_numpy(X), torch.from_numpy(graph), n_rounds=rounds,
                 random_state=seed, callback=record, **kw)  # fmt: skip
    return out


def faiss_nndescent_part(X, y, queries, exact, k, iters):
    """faiss's own NN-descent graph of all rows: time, recall, same-class share."""
    import faiss

    index = faiss.IndexNNDescentFlat(X.shape[1], k, faiss.METRIC_INNER_PRODUCT)
    index.nndescent.iter = iters
    t0 = time.perf_counter()
    index.add(X)
    seconds = time.perf_counter() - t0
    graph = faiss.vector_to_array(index.nndescent.final_graph).reshape(X.shape[0], -1)[:, :k]
    got = graph[queries]
    out = {"iters": iters, "seconds": seconds, "recall": recall(got, exact)}
    out["purity"] = float(np.mean(y[got] == y[queries, None]))
    print(f"faiss IndexNNDescentFlat, {iters} iterations: {seconds:.0f} s, recall@{k} "
          f"{out['recall']:.4f}, same-class {out['purity']:.3f}", flush=True)  # fmt: skip
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_281_167)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-probe", type=int, default=None)
    parser.add_argument("--probes", default="8,16,24,48,96,192")
    parser.add_argument("--backends", default="faiss,torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/skgradnorm-bench"))
    parser.add_argument("--refine-rounds", type=int, default=0)
    parser.add_argument("--refine-probe", type=int, default=None)
    parser.add_argument("--refine-start", choices=["ivf", "hnsw"], default="ivf")
    parser.add_argument("--faiss-nndescent", type=int, default=0)
    args = parser.parse_args(argv)

    import faiss
    import torch

    from skgradnorm._cluster._ann import default_n_lists, default_n_probe
    from skgradnorm._cluster._neighbors import nearest_neighbors

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    out = {"n": args.n, "d": args.d, "k": args.k, "threads": args.threads}
    out["load_before"] = os.getloadavg()
    t0 = time.perf_counter()
    X, y = cached_world(args.n, args.d, args.classes, args.seed, args.cache or None)
    print(f"world {X.shape} in {time.perf_counter() - t0:.0f} s", flush=True)
    queries = np.random.RandomState(args.seed + 1).choice(args.n, args.queries, replace=False)
    exact, faiss_pq, torch_pq = exact_part(X, queries, args.k)
    out["purity20"] = float(np.mean(y[exact[:, :20]] == y[queries, None]))
    out["purity_k"] = float(np.mean(y[exact] == y[queries, None]))
    out["exact_faiss_s"], out["exact_torch_s"] = faiss_pq * args.n, torch_pq * args.n
    print(
        f"20-NN purity {out['purity20']:.3f}; exact search of all rows, extrapolated: faiss "
        f"{out['exact_faiss_s'] / 60:.1f} min, torch {out['exact_torch_s'] / 60:.1f} min",
        flush=True,
    )
    probes = [int(p) for p in args.probes.split(",") if p]
    n_lists, coarse_s, curve = default_n_lists(args.n), None, []
    if probes:  # --probes '' skips the curve (and its coarse k-means)
        n_lists, coarse_s, curve = probe_curve(X, queries, exact, args.k, probes, args.seed)
    out.update(n_lists=n_lists, coarse_s=coarse_s, curve=curve)
    if curve:
        print(f"{n_lists} lists (coarse k-means {coarse_s:.0f} s)", flush=True)
    for row in curve:
        full = row["s_per_query"] * args.n
        print(
            f"  n_probe {row['n_probe']:4d}: recall@{args.k} {row['recall']:.4f}, "
            f"search of all rows ~{full / 60:.1f} min (faiss, extrapolated)",
            flush=True,
        )
    n_probe = args.n_probe or default_n_probe(n_lists)
    out["n_probe"], out["full"] = n_probe, {}
    for backend in [b for b in args.backends.split(",") if b]:
        t0 = time.perf_counter()
        hits = nearest_neighbors(
            X, args.k, algorithm="ivf", backend=backend, device="cpu", n_probe=n_probe,
            random_state=args.seed,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        rec = recall(hits[queries], exact)
        purity = float(np.mean(y[hits[queries]] == y[queries, None]))
        out["full"][backend] = {"seconds": seconds, "recall": rec, "purity": purity}
        print(f"IVF {backend}, n_probe {n_probe} of {n_lists}, all {args.n:,} rows: "
              f"{seconds / 60:.1f} min, recall@{args.k} {rec:.4f}, {args.k}-NN purity "
              f"{purity:.3f} (exact {out['purity_k']:.3f})", flush=True)  # fmt: skip
        del hits
    if args.refine_rounds:
        from skgradnorm._cluster._graph_refine import REFINE_N_PROBE

        out["nndescent"] = refine_part(
            X, y, queries, exact, args.k, args.refine_probe or REFINE_N_PROBE,
            args.refine_rounds, args.seed, args.refine_start,
        )  # fmt: skip
    if args.faiss_nndescent:
        out["faiss_nndescent"] = faiss_nndescent_part(
            X, y, queries, exact, args.k, args.faiss_nndescent
        )
    out["load_after"] = os.getloadavg()
    print(f"load average before {out['load_before']}, after {out['load_after']}")
    assert default_n_lists(args.n) == n_lists
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
