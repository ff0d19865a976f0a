"""TAC's trained cluster heads (``MutualDistillationClusterer``): accuracy and speed.

Accuracy (``--part accuracy``): on several planted worlds (``make_planted_world`` with
different numbers of classes, sub-classes, styles, noise and dimensions), over several
seeds (each seed draws a new world and seeds every estimator), the mean and standard
deviation of the clustering accuracy of

- (a) ``LanguageAssistedClusterer``: training-free GradNorm (k-means on ``[u ; t]``);
- (b) ``MutualDistillationClusterer``: GradNorm's text counterparts + TAC's heads;
- (c) ``MutualDistillationClusterer(strategy="tac")``: TAC's noun filter + TAC's heads.

Every method uses the same selector settings (``GradNormNounSelector`` defaults) and the
estimators' defaults otherwise (TAC's 20 epochs, batch 512, temperature 0.5, 50 neighbours).

Speed (``--part speed``), each row in its own child process (peak memory: VmHWM of that
process, inputs included):

- CIFAR-10 scale: 50,000 x 512 unit vectors in 10 clusters (images and text counterparts
  alike), K = 10: the neighbour search (both modalities), one epoch of the heads, and a full
  ``fit`` (selector on 10,000 random nouns with 250 centres, neighbours, 20 epochs);
- ImageNet-1K scale: 1.28M x 512, K = 1,000 (batch 8,192, temperature 5): ``--steps`` training
  steps timed after one warm-up step, extrapolated to an epoch (156 steps) and to TAC's 100
  epochs; the neighbour search timed for ``--queries`` query rows against all 1.28M rows and
  extrapolated linearly in the number of queries (the exact search is quadratic in n).

Reproduce (from the repository root; on 2 calm cores the speed part takes about 4 minutes,
the accuracy part about 10 to 30 depending on the load)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_distill.py --part accuracy
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_distill.py --part speed

Options: ``--seeds``, ``--samples`` (images per world), ``--threads``, ``--steps``,
``--queries``, ``--device``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _common import lifetime_peak_rss, limit_threads, mib, report, run_child

# Planted worlds: name -> make_planted_world parameters (n_samples is set by --samples).
WORLDS = {
    "default (5 classes x 3 sub-classes x 4 styles)": {},
    "10 classes x 2 sub-classes, noisier images": {
        "n_classes": 10,
        "n_subclasses": 2,
        "image_noise": 1.0,
    },
    "8 classes, 1 sub-class, strong styles": {
        "n_classes": 8,
        "n_subclasses": 1,
        "n_styles": 6,
        "image_style_strength": 0.8,
    },
    "20 classes x 2 sub-classes, d=256, noisier text": {
        "n_classes": 20,
        "n_subclasses": 2,
        "n_features": 256,
        "text_noise": 0.5,
    },
    "6 classes x 4 sub-classes, weak class signal": {
        "n_classes": 6,
        "n_subclasses": 4,
        "image_class_strength": 0.15,
    },
}


# -- accuracy ----------------------------------------------------------------------------


def accuracy_table(n_samples, seeds, device):
    from skgradnorm import (
        GradNormNounSelector,
        LanguageAssistedClusterer,
        MutualDistillationClusterer,
    )
    from skgradnorm.datasets import make_planted_world
    from skgradnorm.metrics import clustering_accuracy_score

    methods = {
        "(a) GradNorm, training-free": lambda k, sel, s: LanguageAssistedClusterer(
            k, selector=sel, random_state=s, device=device
        ),
        "(b) GradNorm + heads": lambda k, sel, s: MutualDistillationClusterer(
            k, selector=sel, random_state=s, device=device
        ),
        "(c) TAC filter + heads": lambda k, sel, s: MutualDistillationClusterer(
            k, selector=sel, strategy="tac", random_state=s, device=device
        ),
    }
    rows = []
    for world_name, params in WORLDS.items():
        scores = {m: [] for m in methods}
        for seed in seeds:
            world = make_planted_world(n_samples=n_samples, random_state=seed, **params)
            k = len(world.target_names)
            selector = GradNormNounSelector(world.noun_embeddings, random_state=seed)
            for name, make in methods.items():
                labels = make(k, selector, seed).fit(world.data).labels_
                scores[name].append(clustering_accuracy_score(world.target, labels))
            print(world_name, seed, {m: round(v[-1], 3) for m, v in scores.items()}, flush=True)
        rows.append((world_name, {m: np.asarray(v) for m, v in scores.items()}))
    return rows


def format_accuracy(rows, n_samples, seeds):
    names = list(rows[0][1])
    lines = [
        f"{n_samples} images per world, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} worlds "
        "drawn per row); ACC mean +- std over the seeds.",
        "",
        "| world | " + " | ".join(names) + " | (b) - (a) | (b) - (c) |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    means = {m: [] for m in names}
    for world_name, scores in rows:
        cells = []
        for m in names:
            cells.append(f"{scores[m].mean():.3f} +- {scores[m].std():.3f}")
            means[m].append(scores[m].mean())
        a, b, c = (scores[m] for m in names)
        cells += [f"{(b - a).mean():+.3f}", f"{(b - c).mean():+.3f}"]
        lines.append(f"| {world_name} | " + " | ".join(cells) + " |")
    avg = [np.mean(means[m]) for m in names]
    lines.append(
        "| **mean over worlds** | "
        + " | ".join(f"**{v:.3f}**" for v in avg)
        + f" | **{avg[1] - avg[0]:+.3f}** | **{avg[1] - avg[2]:+.3f}** |"
    )
    return "\n".join(lines)


# -- speed -------------------------------------------------------------------------------


def clustered_unit_rows(n, d, k, seed, spread=0.6):
    """``n`` unit rows around ``k`` random unit centres (float32), and their cluster."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= spread / np.sqrt(d)
    X += centers[y]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, y


def _train(U, T, nb_img, nb_txt, k, *, epochs, batch, temperature, steps=None):
    import torch

    from skgradnorm._distill import train_heads

    if steps is not None:  # only the first `steps` batches: a truncated copy of the data
        U, T = U[: batch * steps], T[: batch * steps]
        nb_img = nb_img[: batch * steps] % (batch * steps)
        nb_txt = nb_txt[: batch * steps] % (batch * steps)
    return train_heads(
        torch.from_numpy(U),
        torch.from_numpy(T),
        nb_img,
        nb_txt,
        k,
        n_epochs=epochs,
        batch_size=batch,
        temperature=temperature,
        entropy_weight=5.0,
        learning_rate=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        rng=np.random.RandomState(0),
    )


def worker(args):
    limit_threads(args.threads)
    d = 512
    if args.worker.startswith("cifar"):
        n, k = 50_000, 10
        U, y = clustered_unit_rows(n, d, k, seed=0)
        T, _ = clustered_unit_rows(n, d, k, seed=1)
    else:
        n, k = 1_280_000, 1000
        U, y = clustered_unit_rows(n, d, k, seed=0)
        T = U  # the same rows serve as text counterparts: speed does not depend on values
    from skgradnorm._cluster._neighbors import nearest_neighbors

    result = {}
    t0 = time.perf_counter()
    if args.worker == "cifar-neighbors":
        nearest_neighbors(U, 50)
        nearest_neighbors(T, 50)
        result["note"] = "both modalities, faiss IndexFlatIP"
    elif args.worker == "cifar-epoch":
        nb = np.random.default_rng(0).integers(0, n, size=(n, 50)).astype(np.int32)
        t0 = time.perf_counter()
        _, _, curve = _train(U, T, nb, nb, k, epochs=1, batch=512, temperature=0.5)
        result["note"] = f"{n // 512} steps of 512; loss {curve[0]:.3f}"
    elif args.worker == "cifar-fit":
        from skgradnorm import GradNormNounSelector, MutualDistillationClusterer
        from skgradnorm.metrics import clustering_accuracy_score

        bank = np.random.default_rng(2).standard_normal((10_000, d), dtype=np.float32)
        t0 = time.perf_counter()
        model = MutualDistillationClusterer(
            k,
            selector=GradNormNounSelector(bank, n_centers=250, random_state=0),
            random_state=0,
            device=args.device,
        ).fit(U)
        acc = clustering_accuracy_score(y, model.labels_)
        result["note"] = (
            f"selector (250 centres, 10,000 nouns) + neighbours + {model.n_iter_} epochs; "
            f"ACC {acc:.3f} on the planted clusters"
        )
    elif args.worker == "imagenet-steps":
        import torch

        nb = np.random.default_rng(0).integers(0, n, size=(n, 50)).astype(np.int32)
        _train(U, T, nb, nb, k, epochs=1, batch=8192, temperature=5.0, steps=1)  # warm-up
        torch.manual_seed(0)
        t0 = time.perf_counter()
        _train(U, T, nb, nb, k, epochs=1, batch=8192, temperature=5.0, steps=args.steps)
        per_step = (time.perf_counter() - t0) / args.steps
        epoch = per_step * (n // 8192)
        result["note"] = (
            f"{args.steps} steps of 8,192 timed: {per_step:.2f} s/step; one epoch "
            f"({n // 8192} steps) ~{epoch / 60:.1f} min; 100 epochs ~{100 * epoch / 3600:.1f} h"
            " (extrapolated)"
        )
        result["seconds_override"] = epoch
    elif args.worker == "imagenet-neighbors":
        import faiss

        index = faiss.IndexFlatIP(d)
        index.add(U)
        t0 = time.perf_counter()
        index.search(U[: args.queries], 51)
        part = time.perf_counter() - t0
        full = 2 * part * n / args.queries
        result["note"] = (
            f"{args.queries:,} queries x 1.28M rows in {part:.1f} s; both modalities, all "
            f"1.28M queries ~{full / 3600:.1f} h (extrapolated, linear in queries)"
        )
        result["seconds_override"] = full
    result["seconds"] = result.pop("seconds_override", time.perf_counter() - t0)
    result["peak_mib"] = mib(lifetime_peak_rss())
    report(result)


SPEED_ROWS = [
    ("cifar-neighbors", "neighbour search, 50 per sample", "50,000 x 512"),
    ("cifar-epoch", "one epoch of the heads (K=10)", "50,000 x 512"),
    ("cifar-fit", "full fit (K=10, 20 epochs)", "50,000 x 512"),
    ("imagenet-steps", "one epoch of the heads (K=1,000), extrapolated", "1,280,000 x 512"),
    ("imagenet-neighbors", "neighbour search, extrapolated", "1,280,000 x 512"),
]


def speed_table(args):
    lines = [
        f"{args.threads} threads, device {args.device or 'auto'}.",
        "",
        "| step | size | time (s) | peak RSS (MiB) | note |",
        "|---|---|---|---|---|",
    ]
    for name, step, size in SPEED_ROWS:
        extra = ["--threads", str(args.threads), "--steps", str(args.steps)]
        extra += ["--queries", str(args.queries)]
        if args.device:
            extra += ["--device", args.device]
        r = run_child(__file__, ["--worker", name, *extra])
        line = f"| {step} | {size} | {r['seconds']:.1f} | {r['peak_mib']:,.0f} | {r['note']} |"
        print(line, flush=True)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["accuracy", "speed"], default="accuracy")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--device", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    limit_threads(args.threads)
    start = time.perf_counter()
    if args.part == "accuracy":
        seeds = list(range(args.seeds))
        rows = accuracy_table(args.samples, seeds, args.device)
        print(format_accuracy(rows, args.samples, seeds))
    else:
        print(speed_table(args))
    print(json.dumps({"total_seconds": round(time.perf_counter() - start, 1)}), file=sys.stderr)


if __name__ == "__main__":
    main()
