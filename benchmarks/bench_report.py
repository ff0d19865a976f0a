"""What the report costs: writing every output, the map, and the thumbnails.

Command (about a minute on 2 cores)::

    HF_HUB_OFFLINE=1 python benchmarks/bench_report.py

Prints, for a planted world of 600 and of 3,000 images (generated tiles as thumbnails,
one page per cluster holding every member): the time of ``write_outputs``; the time of
the map (PCA and t-SNE, on the drawn sample) with one thread and with the default
thread pools; and the time to make one thumbnail of a 1024 x 768 JPEG. Each figure is the
median of ``--repeat`` runs. The machine's load average is printed first: on a shared
machine the thread figures depend on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    from skgradnorm._cli._demo import swatch_thumbnail
    from skgradnorm._reporting._outputs import write_outputs
    from skgradnorm._reporting._report_data import collection_map
    from skgradnorm._reporting._thumbnails import image_thumbnail
    from skgradnorm.datasets import make_planted_world

    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for n in (600, 3000):
        world = make_planted_world(n_samples=n, random_state=0)
        k = len(world.target_names)
        selector = GradNormNounSelector(
            world.noun_embeddings, vocabulary=world.vocabulary, n_centers=3 * k, random_state=0
        )
        laic = LanguageAssistedClusterer(k, selector=selector, random_state=0).fit(world.data)
        names = np.asarray(world.target_names)[world.target]

        def thumbnail(i, world=world, k=k):
            c, j = int(world.target[i]), int(world.subclass[i])
            return swatch_thumbnail(c / k, shape=j, pattern=int(world.style[i])), ""

        def write(laic=laic, world=world, names=names, thumbnail=thumbnail, n=n):
            with tempfile.TemporaryDirectory() as out:
                write_outputs(
                    out,
                    [f"i{i}" for i in range(n)],
                    laic,
                    world.data,
                    thumbnail=thumbnail,
                    true_labels=names,
                )

        print(
            f"n={n}: write_outputs (every output, {n} thumbnails) "
            f"{_median_time(write, args.repeat):.2f} s"
        )
        X = np.hstack([world.data, laic.selector_.transform(world.data)[:, -world.data.shape[1] :]])
        for method in ("pca", "tsne"):
            repeat = 1 if method == "tsne" else args.repeat
            one = _median_time(lambda m=method, X=X: collection_map(X, method=m), repeat)
            default = _median_time(lambda m=method, X=X: _map_unlimited(X, m), repeat)
            print(
                f"n={n}: map {method}: {one:.2f} s on 1 thread (as in the report), "
                f"{default:.2f} s with the default thread pools"
            )

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:768, 0:1024]
        from PIL import Image

        files = []
        for i in range(20):
            a = np.stack([x * 0.2 + i, y * 0.3, (x + y) * 0.1], -1) % 255
            a = (a + rng.normal(0, 12, a.shape)).clip(0, 255).astype(np.uint8)
            files.append(Path(tmp) / f"{i}.jpg")
            Image.fromarray(a).save(files[-1], quality=90)
        t = _median_time(lambda: [image_thumbnail(f) for f in files], args.repeat)
        print(f"thumbnail of a 1024 x 768 JPEG: {1000 * t / len(files):.1f} ms")
    return 0


def _map_unlimited(X, method, max_points=3000):
    """The map as ``collection_map`` computes it, without its one-thread limit."""
    rng = np.random.default_rng(0)
    n = len(X)
    rows = (
        np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    )
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=0).fit_transform(X[rows])
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=30.0, random_state=0).fit_transform(X[rows])


if __name__ == "__main__":
    sys.exit(main())
