"""skgradnorm.distributed on a LocalCluster: 1 vs 2 workers; block-wise predict in bounded memory.

Project issue 14: "1 vs 2 workers on this 2-core machine for image embedding and for the
noun bank (time ratio and peak memory per worker), and block-wise predict over an array
larger than what one process is allowed to hold (set a memory limit on workers)."

Reproduce (from the repository root; nothing is downloaded; about 4 min on the 2-core CPU)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_distributed.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_distributed.py --n-images 64 \\
        --n-nouns 64 --rows 600000   # a quicker look

What is measured
----------------
The model is open_clip's ViT-B-32 with random weights (weights cannot be downloaded here;
speed and memory do not depend on their values), saved once to a temporary ``.pt`` file so
that every worker loads the same weights, float32 on the CPU. Each worker is a process
with one thread (dask sets ``OMP_NUM_THREADS=1`` in its workers), so 1 worker uses one
core and 2 workers use both cores of this machine.

* image embedding: ``--n-images`` 96 x 96 JPEGs (``bench_images.make_jpegs``) embedded by
  ``embed_images(paths, encoder, client=..., out_dir=..., partition_size=16)`` on a
  ``LocalCluster`` with 1, then 2 workers. A first job loads the model in each worker
  ("cold": its time includes the loads); a second job on a fresh folder is the throughput
  ("warm"). The time ratio is 2 workers over 1 worker, warm.
* noun bank: ``--n-nouns`` WordNet nouns x the paper's 7 templates by
  ``embed_nouns(nouns, encoder, client=..., chunk_size=16)``, models already loaded in
  the workers, into an empty cache folder each time.
* for reference, the single process: ``CLIPEncoder.transform`` and ``encode_nouns`` with 2
  torch threads on the same inputs (model loaded beforehand).
* block-wise predict: a ``--rows`` x 512 float32 dask array (normal random, generated on
  the workers block by block: it never exists whole) on a cluster of 2 workers whose
  memory limit (``--memory-limit``, default 1.5 GiB each) is smaller than the array. A
  ``BlockwisePostFit(SphericalKMeans(100), max_fit_samples=20,000)`` is fitted on a
  sample, then ``predict`` runs block-wise. Reported: the time of fit and of predict, the
  peak RSS of each worker, whether a worker was restarted, and a check that the labels
  of the first block equal in-memory ``predict`` on it.

Peak memory per worker is its VmHWM (peak resident set size, from ``/proc``), read at the
end of each job on each worker: it includes torch, open_clip and the model. Times are
wall clock on a machine shared with other processes: treat single figures with caution.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_images import make_jpegs  # noqa: E402

MODEL = "ViT-B-32"


def _vm_peak_mib():
    """This process's peak resident set size in MiB (run on each worker)."""
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def _cluster(n_workers, memory_limit="auto"):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        silence_logs=logging.ERROR,
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
    )
    return cluster, Client(cluster, set_as_default=False)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _save_random_weights(folder):
    import torch

    from skgradnorm._utils._compat import import_open_clip

    torch.manual_seed(0)
    model = import_open_clip().create_model(MODEL, pretrained=None)
    path = Path(folder) / "vit_b_32_random.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def bench_workers(paths, nouns, weights, tmp, n_workers):
    from skgradnorm import CLIPEncoder
    from skgradnorm.distributed import embed_images, embed_nouns

    enc = CLIPEncoder(MODEL, pretrained=weights, device="cpu", cache_dir=False)
    cluster, client = _cluster(n_workers)
    try:
        cold, _ = _timed(
            lambda: embed_images(
                paths, enc, client=client, out_dir=f"{tmp}/cold{n_workers}", partition_size=16
            )
        )
        warm, U = _timed(
            lambda: embed_images(
                paths, enc, client=client, out_dir=f"{tmp}/warm{n_workers}", partition_size=16
            )
        )
        noun_enc = enc.set_params(cache_dir=f"{tmp}/cache{n_workers}")
        nouns_s, E = _timed(lambda: embed_nouns(nouns, noun_enc, client=client, chunk_size=16))
        peaks = sorted(client.run(_vm_peak_mib).values())
    finally:
        client.close()
        cluster.close()
    return {"cold": cold, "warm": warm, "nouns": nouns_s, "peaks": peaks, "U": U.compute(), "E": E}


def bench_single(paths, nouns, weights):
    import torch

    from skgradnorm import CLIPEncoder

    torch.set_num_threads(2)
    enc = CLIPEncoder(MODEL, pretrained=weights, device="cpu", cache_dir=False)
    enc.transform(paths[:2])  # load the model outside the timing
    images_s, U = _timed(lambda: enc.transform(paths))
    nouns_s, E = _timed(lambda: enc.encode_nouns(nouns))
    return {"images": images_s, "nouns": nouns_s, "U": U, "E": E}


def bench_blockwise(rows, memory_limit):
    import dask.array as da

    from skgradnorm import SphericalKMeans
    from skgradnorm.distributed import BlockwisePostFit

    cluster, client = _cluster(2, memory_limit)
    try:
        pids = client.run(os.getpid)
        X = da.random.default_rng(0).standard_normal(
            (rows, 512), chunks=(32768, 512), dtype=np.float32
        )
        km = SphericalKMeans(100, n_init=1, max_iter=20, random_state=0, device="cpu")
        model = BlockwisePostFit(km, max_fit_samples=20_000, random_state=0)
        with client.as_current():  # the sample is drawn on the workers
            fit_s, _ = _timed(lambda: model.fit(X))
        y = model.predict(X)
        predict_s, labels = _timed(lambda: client.compute(y).result())
        first = client.compute(X.blocks[0]).result()
        same = bool(np.array_equal(labels[: len(first)], model.estimator_.predict(first)))
        peaks = sorted(client.run(_vm_peak_mib).values())
        restarted = set(client.run(os.getpid).values()) != set(pids.values())
    finally:
        client.close()
        cluster.close()
    return {
        "gib": X.nbytes / 2**30,
        "fit": fit_s,
        "predict": predict_s,
        "peaks": peaks,
        "restarted": restarted,
        "same": same,
        "n_labels": len(labels),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=192)
    parser.add_argument("--n-nouns", type=int, default=128)
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--memory-limit", default="1.5GiB")
    args = parser.parse_args(argv)

    from skgradnorm.vocabulary import wordnet_nouns

    nouns = wordnet_nouns()[:: max(1, len(wordnet_nouns()) // args.n_nouns)][: args.n_nouns]
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        os.mkdir(f"{tmp}/img")
        paths, _ = make_jpegs(f"{tmp}/img", args.n_images)
        weights = _save_random_weights(tmp)
        one = bench_workers(paths, nouns, weights, tmp, 1)
        two = bench_workers(paths, nouns, weights, tmp, 2)
        single = bench_single(paths, nouns, weights)
    block = bench_blockwise(args.rows, args.memory_limit)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load}")

    diff_u = float(np.abs(two["U"] - single["U"]).max())
    diff_e = float(np.abs(two["E"] - single["E"]).max())
    n, m = args.n_images, len(nouns)
    print("| step | size | setting | time (s) | ratio to 1 worker | peak RSS each (MiB) | note |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("1 worker", one), ("2 workers", two)):
        peaks = " / ".join(f"{p:,.0f}" for p in r["peaks"])
        print(
            f"| image embedding | {n} JPEGs 96x96, ViT-B-32 224px, partitions of 16 | {name} "
            f"| {r['warm']:.2f} | {r['warm'] / one['warm']:.2f} | {peaks} | "
            f"{n / r['warm']:.1f} img/s warm; cold job (model loads included) {r['cold']:.2f} s |"
        )
    print(
        f"| image embedding | same | 1 process, 2 threads | {single['images']:.2f} | "
        f"{single['images'] / one['warm']:.2f} |  | {n / single['images']:.1f} img/s; "
        f"2 workers vs it: max diff {diff_u:.1e} |"
    )
    for name, r in (("1 worker", one), ("2 workers", two)):
        peaks = " / ".join(f"{p:,.0f}" for p in r["peaks"])
        print(
            f"| noun bank | {m} nouns x 7 templates, chunks of 16 | {name} | {r['nouns']:.2f} "
            f"| {r['nouns'] / one['nouns']:.2f} | {peaks} | {m * 7 / r['nouns']:.0f} prompts/s |"
        )
    print(
        f"| noun bank | same | 1 process, 2 threads | {single['nouns']:.2f} | "
        f"{single['nouns'] / one['nouns']:.2f} |  | {m * 7 / single['nouns']:.0f} prompts/s; "
        f"2 workers vs it: max diff {diff_e:.1e} |"
    )
    peaks = " / ".join(f"{p:,.0f}" for p in block["peaks"])
    print(
        f"| block-wise predict | {block['n_labels']:,} x 512 float32 ({block['gib']:.2f} GiB), "
        f"SphericalKMeans(100) fitted on 20,000 rows | 2 workers, memory_limit "
        f"{args.memory_limit} each | {block['predict']:.2f} |  | {peaks} | fit on the sample "
        f"{block['fit']:.2f} s; worker restarted: {block['restarted']}; first block equals "
        f"in-memory predict: {block['same']} |"
    )


if __name__ == "__main__":
    main()
