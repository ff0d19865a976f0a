"""Run every benchmark at one scale and print one table (project issue 5).

Reproduce (from the repository root, after ``make test`` or ``make demo`` built ``.venv``)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run.py --scale small      # ~2-3 minutes, 2 cores
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run.py --scale imagenet   # ~40 minutes, 2 cores

``--only kmeans,scoring,pipeline,images`` runs some of the steps; ``--json FILE`` also
writes the rows as JSON; ``--threads`` (default: every core) is given to torch, BLAS and
faiss alike. Each step is its own module, which can also be run alone with more options:

- ``bench_kmeans.py``: spherical k-means, the package against faiss-cpu's spherical k-means
  and scikit-learn's ``KMeans`` on the same unit rows, at equal settings (iterations,
  restarts); ``imagenet``: (a) 50,000 x 1,024 into 1,000 clusters and (b) the centre step,
  1.28M x 512 into 2,000, also with ``max_samples`` (centres fitted on a subsample);
- ``bench_scoring.py``: GradNorm scoring + per-centre selection, 2,000 centres x 117,798
  nouns, against the plain per-centre reference;
- ``bench_pipeline.py``: retrieval of 50,000 text counterparts against the selected nouns
  (against the whole-matrix numpy formula) and the whole pipeline from embeddings to labels;
- ``bench_images.py``: image encoding streamed from disk (10,000 small JPEGs, ViT-B-32 with
  random weights) against eager open_clip code.

Every implementation runs in its own child process, so that its peak memory is its own.
Columns: time of the measured call; "peak RSS", the child's peak resident memory over its
life (its inputs included); "extra", the growth during the call over what it held before;
"time ratio", the row's time over the time of the step's first row (the package), measured
in the same run; "quality", what shows that the rows compute the same thing (objective,
identical output...). The data are synthetic (random unit vectors in clusters, random
weights): speed and memory do not depend on what the vectors mean.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import SCALES, format_table  # noqa: E402

STEPS = ("kmeans", "scoring", "pipeline", "images")


def _module(step):
    import importlib

    return importlib.import_module(
        {
            "kmeans": "bench_kmeans",
            "scoring": "bench_scoring",
            "pipeline": "bench_pipeline",
            "images": "bench_images",
        }[step]
    )


def machine_description() -> str:
    """CPU model, cores, memory, GPU (if any) and library versions, in one line."""
    import numpy
    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    try:
        import faiss

        faiss_v = faiss.__version__
    except ImportError:
        faiss_v = "not installed"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {numpy.__version__}, "
        f"scikit-learn {sklearn.__version__}, faiss {faiss_v}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--only", help=f"comma-separated steps among {', '.join(STEPS)}")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    steps = args.only.split(",") if args.only else list(STEPS)
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {unknown}; choose among {', '.join(STEPS)}")

    started = datetime.datetime.now().astimezone()
    print(f"{started:%Y-%m-%d %H:%M %Z}, scale {args.scale}, {args.threads} threads")
    print(machine_description(), flush=True)
    rows, timings = [], {}
    for step in steps:
        t0 = time.perf_counter()
        print(f"\n== {step}", flush=True)
        rows += _module(step).run_suite(args.scale, args.threads)
        timings[step] = time.perf_counter() - t0
        print(f"== {step} done in {timings[step]:.0f} s", flush=True)
    print()
    print(format_table(rows))
    print("\nwall time per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "date": started.isoformat(),
                    "scale": args.scale,
                    "threads": args.threads,
                    "machine": machine_description(),
                    "wall_s": timings,
                    "rows": [r.as_dict() for r in rows],
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
