"""``skgradnorm demo``: GradNorm on a synthetic planted world, with the same report as ``cluster``.

The planted world has no pictures, so each "image" of the report is a generated tile
(:func:`swatch_thumbnail`) whose colour is its true class, its shape its sub-class and its
stripes its style.
"""

from __future__ import annotations

import colorsys
import os
import time

import numpy as np

from .._reporting._thumbnails import THUMBNAIL_SIZE, data_uri

__all__ = ["demo", "swatch_thumbnail"]


_SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross")


def swatch_thumbnail(hue, shape=0, pattern=0, size=THUMBNAIL_SIZE) -> str:
    """A generated ``data:image/png`` tile: a colour (``hue`` in [0, 1)) with a white shape.

    For data without images (the planted world of ``skgradnorm demo``): ``hue`` shows the
    class, ``shape`` (an int) the sub-class and ``pattern`` (an int) a nuisance such as the
    style, as faint stripes.

    Examples
    --------
    >>> swatch_thumbnail(0.5, shape=1, pattern=2).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image, ImageDraw

    r, g, b = colorsys.hsv_to_rgb(float(hue) % 1.0, 0.65, 0.85)
    base = (int(r * 255), int(g * 255), int(b * 255))
    im = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(im)
    # The nuisance: stripes in one of a few directions, a little darker than the tile.
    stripe = tuple(int(c * 0.82) for c in base)
    step = max(4, size // 8)
    direction = int(pattern) % 4
    for t in range(-size, 2 * size, step):
        if direction == 1:
            draw.line([(0, t), (size, t)], fill=stripe, width=2)
        elif direction == 2:
            draw.line([(t, 0), (t, size)], fill=stripe, width=2)
        elif direction == 3:
            draw.line([(t, 0), (t + size, size)], fill=stripe, width=2)
    # The sub-class: a white shape in the middle.
    m, c = size * 0.25, size / 2
    box = [m, m, size - m, size - m]
    kind = _SHAPES[int(shape) % len(_SHAPES)]
    white = (255, 255, 255)
    if kind == "circle":
        draw.ellipse(box, fill=white)
    elif kind == "square":
        draw.rectangle(box, fill=white)
    elif kind == "triangle":
        draw.polygon([(c, m), (size - m, size - m), (m, size - m)], fill=white)
    elif kind == "diamond":
        draw.polygon([(c, m), (size - m, c), (c, size - m), (m, c)], fill=white)
    elif kind == "ring":
        draw.ellipse(box, outline=white, width=max(3, size // 12))
    else:
        w = size // 10
        draw.rectangle([c - w, m, c + w, size - m], fill=white)
        draw.rectangle([m, c - w, size - m, c + w], fill=white)
    return data_uri(im, fmt="PNG")


def demo(args) -> int:
    """GradNorm on a planted world: what it selects, and ACC with and without language."""
    from ._inputs import claim_out_dir, user_path

    t0 = time.perf_counter()
    _check_demo_args(args)
    out_dir = user_path(args.out, "--out")
    with claim_out_dir(out_dir, args.overwrite, own_source="demo"):
        return _run_demo(args, out_dir, t0)


#: Memory the demo takes per image (its embeddings, the clustering's copies and the
#: report's tiles), measured with ``/usr/bin/time -v``: 390 MB at 2,000 images and
#: 560 MB at 20,000, so about 10 kB per image above 370 MB.
DEMO_BYTES_PER_IMAGE = 10_000
DEMO_BASE_BYTES = 370_000_000


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def _check_demo_args(args) -> None:
    """Sizes the demo can run, refused before anything is made (exit 2)."""
    from ._inputs import CLIError

    n, k = args.n_samples, args.n_classes
    if n < 3 * k:
        raise CLIError(
            f"--n-samples {n} is too few for --n-classes {k}: GradNorm's {3 * k} image "
            f"centres need at least {3 * k} images; pass --n-samples {3 * k} or more."
        )
    need = DEMO_BASE_BYTES + DEMO_BYTES_PER_IMAGE * n
    have = _physical_memory()
    if have is not None and need > have:
        raise CLIError(
            f"--n-samples {n:,} needs about {need / 2**30:,.1f} GiB of memory and this "
            f"machine has {have / 2**30:,.1f} GiB; pass a smaller --n-samples."
        )


def _run_demo(args, out_dir, t0) -> int:
    from .. import GradNormNounSelector, LanguageAssistedClusterer, SphericalKMeans
    from .._reporting._outputs import write_outputs
    from ..datasets import make_planted_world
    from ..metrics import clustering_metrics

    world = make_planted_world(
        n_samples=args.n_samples, n_classes=args.n_classes, random_state=args.seed
    )
    k = len(world.target_names)
    print(world.DESCR)
    print(f"classes: {', '.join(world.target_names)}\n")

    def evaluate(name, labels):
        m = clustering_metrics(world.target, labels)
        print(f"  {name:<42} ACC {m['ACC']:.3f}  NMI {m['NMI']:.3f}  ARI {m['ARI']:.3f}")

    results = {}
    for strategy in ("gradnorm", "none"):
        selector = GradNormNounSelector(
            world.noun_embeddings,
            vocabulary=world.vocabulary,
            n_centers=3 * k,
            strategy=strategy,
            random_state=args.seed,
        )
        results[strategy] = LanguageAssistedClusterer(
            k, selector=selector, random_state=args.seed
        ).fit(world.data)

    sel = results["gradnorm"].selector_
    kinds = world.noun_kind[sel.selected_indices_]
    print(
        f"GradNorm kept {len(sel.selected_nouns_)} of {len(world.vocabulary)} nouns "
        f"({np.mean(kinds == 'positive'):.0%} truly positive; the bank has "
        f"{np.mean(world.noun_kind == 'positive'):.0%}):"
    )
    for c in range(sel.n_centers_):
        names = [
            sel.selected_nouns_[i]
            for i in np.flatnonzero(sel.assignments_[sel.selected_indices_] == c)
        ]
        if names:
            print(f"  centre {c:>2}: {', '.join(names)}")
    print("\nClustering accuracy against the planted classes:")
    image_only = SphericalKMeans(k, n_init=20, random_state=args.seed).fit_predict(world.data)
    evaluate("image-only spherical k-means", image_only)
    evaluate("language-assisted, all nouns (no filter)", results["none"].labels_)
    evaluate("language-assisted, GradNorm nouns", results["gradnorm"].labels_)

    # The report: the planted world has no pictures, so each "image" is a generated tile
    # whose colour is its true class, its shape its sub-class and its stripes its style.
    names = world.target_names
    ids = [f"image_{i:04d}" for i in range(len(world.target))]

    def thumbnail(i):
        c, j = int(world.target[i]), int(world.subclass[i])
        return swatch_thumbnail(c / k, shape=j, pattern=int(world.style[i])), f"{names[c]} {j + 1}"

    true_names = [names[c] for c in world.target]
    result = write_outputs(
        out_dir,
        ids,
        results["gradnorm"],
        world.data,
        thumbnail=thumbnail,
        true_labels=true_names,
        title="skgradnorm demo: a planted world",
        meta_lines=[
            world.DESCR,
            "No pictures here: each tile's colour is its true class, its shape the sub-class "
            "and its stripes the style (captions: class and sub-class). "
            "A good cluster is one colour.",
            f"GradNorm kept {len(sel.selected_nouns_)} of {len(world.vocabulary)} nouns.",
        ],
        info={
            "source": "demo",
            "parameters": {
                "n_samples": args.n_samples,
                "n_classes": args.n_classes,
                "seed": args.seed,
            },
        },
    )
    print(f"\nreport written to {result['files']['report.html'].resolve()}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
