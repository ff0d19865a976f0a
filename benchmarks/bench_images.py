"""Image encoding streamed from disk: images/s and peak memory of CLIPEncoder.transform.

Project issue 5: "Image encoding streams from disk: memory does not grow with the number of
images. Measure images/s and peak memory for 10,000 small JPEGs on this CPU (random
weights)."

Reproduce (from the repository root; nothing is downloaded; times on the 2-core CPU)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_images.py --scale imagenet  # ~15 min
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_images.py --scale small     # ~2 min
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_images.py --n-images 2000   # ~5 min

``benchmarks/run.py --scale imagenet`` runs it too (through :func:`run_suite`). Options:
``--n-images`` (overrides the scale's count), ``--size`` (pixel size of the square JPEGs,
default 96), ``--threads`` (default: all cores), ``--eager-max`` (the most images the eager
baseline loads, default 2,000), ``--impls`` (comma-separated, from ``package``,
``package[num_workers=1]``, ``eager``; default ``package,eager``: the first always runs),
``--repeats`` (interleaved rounds of all children, default 1; each row keeps its fastest
round: this machine is shared, and other processes' load slows single runs).

What is measured
----------------
The parent writes N small JPEGs into a temporary folder (``--scale small``: 400,
``imagenet``: 10,000), deterministically (seeded): ``--size`` x ``--size`` RGB, smooth
random colour gradients, blobs and rectangles plus a little noise, quality 85 (2.6 KB each
at 96 x 96, like real thumbnails). Writing them is not timed; their total size on disk is
printed. The model is
open_clip's ViT-B-32 architecture with random weights (``pretrained=None``: weights cannot
be downloaded here; speed and memory do not depend on the values), float32 on the CPU,
built after ``torch.manual_seed(0)`` in every child, so that all children hold the same
weights (open_clip's random initialisation is deterministic under a seed; each child
reports a hash of its state dict; the parent warns in every note if they differ). Each
implementation runs in its own child process (``--worker``) with ``--threads`` threads:

* ``package``: ``CLIPEncoder("ViT-B-32", pretrained=None, device="cpu", batch_size=64,
  cache_dir=False).transform(paths)`` on all N paths. The model is built first (its time is
  reported apart, in ``extra["load_s"]``) and a warm-up ``transform`` of one batch (64
  images) runs outside the timing (every child warms up so). ``transform`` checks every
  file (``_check_image_files``: a PIL ``verify`` pass), then streams the images through a
  torch ``DataLoader`` (decode, the model's own preprocessing to 3 x 224 x 224, batches
  of 64) into a preallocated N x 512 float32 output. Two parts of it are also timed
  alone, just before, in the same child (their ratio is their share of the package's
  time): the check pass (row "of which _check_image_files") and the image pipeline without
  the model (row "of which decode + preprocess": the package's ``_ImageDataset`` through a
  ``DataLoader``, no workers).
* ``package`` again, in another child, on the first N/10 paths (at least two batches,
  128): the peak extra memory there and at N shows whether memory grows with N. Only the
  output (N x 512 float32, 2 KiB per image, normalised in place) should; the note
  gives the growth per 1,000 images between the two.
* ``package[num_workers=1]`` (optional, ``--impls``): the same with one DataLoader worker
  process decoding and preprocessing while the main process runs the model. Its peak RSS
  is the main process's only (the worker's is in ``extra["worker_peak_mib"]``; it shares
  the parent's pages after fork, so the two do not add up). Not run by default: on 2 cores
  decoding is ~3% of the time, and the worker takes CPU from the model's threads (at 400
  images it was 1.12x slower than ``num_workers=0``).
* ``eager``: what one writes with open_clip alone: ``model, _, preprocess =
  open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)``, then
  ``torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])`` over all the
  images first, then ``model.encode_image`` in batches of 64 under
  ``torch.inference_mode()`` and L2 normalisation. (open_clip is imported through
  ``skgradnorm._utils._compat.import_open_clip``, which only works around a broken torchvision
  build where there is one.) Its memory grows by 3 x 224 x 224 float32 = 588 KiB per image
  (twice that at the ``torch.stack``), 10,000 images would need ~12 GB, so it runs on
  min(N, ``--eager-max``) images (said in its size column); its note gives its extra MiB
  per 1,000 images. Its embeddings are compared with the package's on the images both
  encoded (max absolute difference of the unit embeddings: "same embeddings").

Columns: "time" is the wall time of the measured call; "peak RSS" the child's lifetime peak
resident set size (model and inputs included); "extra" the growth of its peak during the
call over what it held just before (``_common.reset_peak_rss``); "time ratio" the time per
image over the package's on all N images in the same run; images/s is in the note and in
``extra["images_per_s"]``. "cores busy" in the note is the child's CPU time during the call
over its wall time (``extra["cpu_s"]``): with 2 threads on an idle 2-core machine it is
close to 2; lower means that other processes took CPU time from the run.

Noise. On this (virtual, shared) 2-core machine, the same child run twice gives images/s
that differ by up to ~20% even with 2 cores busy, so a single run's "time ratio" between
the package and the eager baseline is within that noise (run with the same model object in
one process, alternating, the two take the same time to within 5%: the model's forward pass
is ~98% of the time). ``--repeats 3`` keeps each child's fastest round. Likewise the peak
"extra" (mostly one batch's activations, ~100-250 MiB) moves by some tens of MiB between
children, so the growth per 1,000 images is only resolved with N in the thousands.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    Row,
    lifetime_peak_rss,
    limit_threads,
    mib,
    peak_rss,
    reset_peak_rss,
)

STEP = "image encoding (streamed from disk)"
N_IMAGES = {"small": 400, "imagenet": 10_000}
DEFAULT_SIZE = 96
EAGER_MAX = 2_000
BATCH = 64
MODEL = "ViT-B-32"
WARMUP = BATCH  # one full batch: the first batch of a shape costs more
DEFAULT_IMPLS = ("package", "eager")
KNOWN_IMPLS = ("package", "package[num_workers=1]", "eager")


# --------------------------------------------------------------------------- the images


def make_jpegs(folder, n, size=DEFAULT_SIZE, seed=0, quality=85):
    """Write ``n`` deterministic ``size`` x ``size`` RGB JPEGs into ``folder``.

    Each is a smooth colour gradient in a random direction, two to four soft coloured blobs,
    one to three half-transparent rectangles (hard edges) and a little Gaussian noise, so
    that JPEG compresses it like a photo thumbnail (2-3 KB at 96 x 96). Returns
    ``(paths, total_bytes)``.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths, total = [], 0
    for i in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        img = c0 + (c1 - c0) * ((ramp - ramp.min()) / np.ptp(ramp))[..., None]
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.uniform(0, 1, size=2)
            radius = rng.uniform(0.08, 0.3)
            weight = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))[..., None]
            colour = rng.uniform(0, 255, size=3).astype(np.float32)
            img = img * (1 - weight) + colour * weight
        for _ in range(rng.integers(1, 4)):  # hard edges: what gives photos detail
            y0, x0 = rng.integers(0, size, size=2)
            h, w = rng.integers(size // 8, size // 2, size=2)
            img[y0 : y0 + h, x0 : x0 + w] = 0.5 * img[y0 : y0 + h, x0 : x0 + w] + 0.5 * (
                rng.uniform(0, 255, size=3).astype(np.float32)
            )
        img += rng.normal(0, 8, size=img.shape).astype(np.float32)
        path = os.path.join(folder, f"img_{i:05d}.jpg")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB").save(
            path, quality=quality
        )
        total += os.path.getsize(path)
        paths.append(path)
    return paths, total


def _paths(folder, n):
    return [os.path.join(folder, f"img_{i:05d}.jpg") for i in range(n)]


# --------------------------------------------------------------------------- the workers


def _state_hash(model):
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _measure(encode, paths, out) -> dict:
    """Time ``encode(paths)`` (wall and CPU) and its peak memory; save its output to ``out``."""
    rss0 = reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    U = encode(paths)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    extra = peak_rss() - rss0
    np.save(out, U)
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before_mib": mib(rss0),
        "peak_mib": mib(lifetime_peak_rss()),
        "extra_mib": mib(extra),
    }


def _worker_package(args, paths):
    import torch

    from skgradnorm import CLIPEncoder
    from skgradnorm._clip._images import _collate, _ImageDataset, check_image_files

    num_workers = 1 if "num_workers=1" in args.worker else 0
    enc = CLIPEncoder(
        MODEL,
        pretrained=None,
        device="cpu",
        precision="fp32",
        batch_size=BATCH,
        num_workers=num_workers,
        cache_dir=False,
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "random weights" warning: intended here
        t0 = time.perf_counter()
        bundle = enc._get_bundle()
        load_s = time.perf_counter() - t0
    enc.transform(paths[:WARMUP])  # warm-up: allocator, kernels (and a DataLoader worker)

    t0 = time.perf_counter()
    check_image_files(paths)
    check_s = time.perf_counter() - t0
    # What the streaming adds: decode + preprocess + collate, without the model.
    loader = torch.utils.data.DataLoader(
        _ImageDataset(paths, bundle.preprocess), batch_size=BATCH, collate_fn=_collate
    )
    t0 = time.perf_counter()
    for _ in loader:
        pass
    decode_s = time.perf_counter() - t0
    del loader

    return {
        **_measure(enc.transform, paths, args.out),
        "load_s": load_s,
        "check_s": check_s,
        "decode_s": decode_s,
        # DataLoader worker processes (num_workers > 0), reaped at the end of the loop.
        "worker_peak_mib": mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024),
        "weights": _state_hash(bundle.model),
        "threads": torch.get_num_threads(),
    }


def _worker_eager(args, paths):
    import torch
    from PIL import Image

    from skgradnorm._utils._compat import import_open_clip

    open_clip = import_open_clip()  # = import open_clip (see the module docstring)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=None)
    model.eval()
    load_s = time.perf_counter() - t0

    def encode(paths):
        batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        parts = []
        with torch.inference_mode():
            for start in range(0, len(batch), BATCH):
                parts.append(model.encode_image(batch[start : start + BATCH]))
        features = torch.cat(parts)
        return (features / features.norm(dim=-1, keepdim=True)).numpy()

    encode(paths[:WARMUP])  # warm-up
    return {
        **_measure(encode, paths, args.out),
        "load_s": load_s,
        "weights": _state_hash(model),
        "threads": torch.get_num_threads(),
    }


def _worker(args):
    limit_threads(args.threads)
    paths = _paths(args.dir, args.n)
    if args.worker.startswith("package"):
        result = _worker_package(args, paths)
    elif args.worker == "eager":
        result = _worker_eager(args, paths)
    else:
        raise ValueError(f"unknown implementation {args.worker!r}")
    _common.report(result)


# --------------------------------------------------------------------------- the suite


def _child(impl, folder, n, threads, out):
    args = ["--worker", impl, "--dir", folder, "--n", str(n), "--threads", str(threads)]
    return _common.run_child(__file__, [*args, "--out", out])


def run_suite(
    scale: str,
    threads: int,
    *,
    n_images=None,
    size=None,
    eager_max=EAGER_MAX,
    impls=DEFAULT_IMPLS,
    repeats=1,
) -> list[Row]:
    """Run every implementation in its own child process; one :class:`Row` each.

    With ``repeats`` > 1 the children run in interleaved rounds; each row keeps its fastest
    round (and the largest peak memory over the rounds).
    """
    if scale not in N_IMAGES:
        raise ValueError(f"scale must be one of {sorted(N_IMAGES)}; got {scale!r}")
    n = int(n_images or N_IMAGES[scale])
    size = int(size or DEFAULT_SIZE)
    impls = list(dict.fromkeys(["package", *impls]))
    unknown = set(impls) - set(KNOWN_IMPLS)
    if unknown:
        raise ValueError(f"unknown implementations {sorted(unknown)}; known: {KNOWN_IMPLS}")
    n_small = min(n, max(n // 10, 2 * BATCH))  # >= 2 full batches
    n_eager = min(n, eager_max)

    def what(k):
        return f"{k:,} JPEGs {size}x{size} -> {MODEL} 224px"

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_images_") as folder:
        t0 = time.perf_counter()
        _, total = make_jpegs(folder, n, size)
        print(
            f"{n:,} JPEGs {size}x{size} written in {time.perf_counter() - t0:.1f} s: "
            f"{total / 2**20:.1f} MiB on disk ({total / n / 1024:.1f} KiB each); "
            f"{threads} threads",
            flush=True,
        )
        plan = [("package", n), ("package@small", n_small)] + [
            (name, n_eager if name == "eager" else n) for name in impls if name != "package"
        ]
        res, out = {}, {}
        for round_ in range(max(1, int(repeats))):
            for j, (impl, k) in enumerate(plan):
                out[impl] = os.path.join(folder, f"out_{j}.npy")
                r = _child(impl.split("@")[0], folder, k, threads, out[impl])
                r["n"] = k
                print(
                    f"  round {round_ + 1}: {impl} on {k:,} images: {r['seconds']:.1f} s, "
                    f"{r['cpu_s'] / r['seconds']:.2f} cores busy",
                    flush=True,
                )
                old = res.get(impl)
                if old is not None:
                    r["seconds_all"] = old["seconds_all"] + [r["seconds"]]
                    r["peak_mib"] = max(r["peak_mib"], old["peak_mib"])
                    r["extra_mib"] = max(r["extra_mib"], old["extra_mib"])
                    if old["seconds"] <= r["seconds"]:
                        r = dict(
                            old,
                            seconds_all=r["seconds_all"],
                            peak_mib=r["peak_mib"],
                            extra_mib=r["extra_mib"],
                        )
                else:
                    r["seconds_all"] = [r["seconds"]]
                res[impl] = r
        U = np.load(out["package"])
        diffs = {}
        for impl in res:
            if impl != "package":
                V = np.load(out[impl])
                diffs[impl] = float(np.abs(U[: len(V)] - V).max())

    ref = res["package"]
    per_image = ref["seconds"] / n
    weights_ok = len({r["weights"] for r in res.values()}) == 1

    def row(impl, r, name, size_text, note, ratio=True):
        rate = r["n"] / r["seconds"]
        extra = {k: v for k, v in r.items() if k not in ("seconds", "peak_mib", "extra_mib")}
        extra.update(
            images_per_s=rate,
            n_images=r["n"],
            image_size=size,
            threads=threads,
            max_abs_diff_vs_package=diffs.get(impl),
        )
        rows.append(
            Row(
                step=STEP,
                size=size_text,
                impl=name,
                seconds=r["seconds"],
                peak_mib=r["peak_mib"],
                extra_mib=r["extra_mib"],
                ratio=(r["seconds"] / r["n"]) / per_image if ratio else None,
                note=f"{rate:.1f} img/s ({r['cpu_s'] / r['seconds']:.1f} cores busy)"
                + (f"; {note}" if note else ""),
                extra=extra,
            )
        )

    small = res["package@small"]
    if n > small["n"]:
        growth = (ref["extra_mib"] - small["extra_mib"]) / (n - small["n"]) * 1000
        growth_note = (
            f"peak extra grows {growth:+.1f} MiB per 1,000 images from "
            f"{small['n']:,} to {n:,} images (output: 2.0 MiB per 1,000)"
        )
    else:  # N is at most two batches: N/10 is N itself, there is no growth to measure
        growth_note = "no growth measured (N/10 is N at this size)"
    row(
        "package",
        ref,
        "package",
        what(n),
        f"model load {ref['load_s']:.1f} s excluded; {growth_note}",
        ratio=False,
    )
    row(
        "package@small",
        small,
        "package (N/10)",
        what(small["n"]),
        f"same embeddings as on N (max diff {diffs['package@small']:.1e})",
    )
    parts = (
        (
            "of which _check_image_files",
            "check_s",
            "files_per_s",
            "files/s",
            "PIL verify pass, part of transform",
        ),
        (
            "of which decode + preprocess",
            "decode_s",
            "images_per_s",
            "img/s",
            "the DataLoader alone, no model",
        ),
    )
    for impl, key, rate_key, unit, what_it_is in parts:
        rows.append(
            Row(
                step=STEP,
                size=what(n),
                impl=impl,
                seconds=ref[key],
                ratio=ref[key] / ref["seconds"],
                note=f"{n / ref[key]:,.0f} {unit} ({what_it_is})",
                extra={rate_key: n / ref[key], "n_images": n},
            )
        )
    for impl in impls:
        if impl == "package":
            continue
        r = res[impl]
        if impl == "eager":
            note = (
                f"extra {r['extra_mib'] / r['n'] * 1000:,.0f} MiB per 1,000 images; "
                f"same embeddings (max diff {diffs[impl]:.1e})"
            )
            label = what(r["n"]) + (f" (of {n:,})" if r["n"] < n else "")
            row(impl, r, "open_clip eager", label, note)
        else:
            note = (
                f"same embeddings (max diff {diffs[impl]:.1e}); worker peak "
                f"{r['worker_peak_mib']:,.0f} MiB, not counted"
            )
            row(impl, r, impl, what(r["n"]), note)
    if not weights_ok:
        for r in rows:
            r.note += "; WARNING: the children's random weights differ"
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(N_IMAGES), default="small")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--n-images", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--eager-max", type=int, default=EAGER_MAX)
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS))
    parser.add_argument("--repeats", type=int, default=1)
    # Child-process mode (one implementation).
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    impls = [s.strip() for s in args.impls.split(",") if s.strip()]
    rows = run_suite(
        args.scale,
        args.threads,
        n_images=args.n_images,
        size=args.size,
        eager_max=args.eager_max,
        impls=impls,
        repeats=args.repeats,
    )
    print(_common.format_table(rows))


if __name__ == "__main__":
    main()
