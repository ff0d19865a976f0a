"""One short run that checks the CUDA paths against the CPU and measures them (issue 18).

Run on a machine with a GPU (from the repository root; sized to finish in under 8 minutes on
one H100 or H200 by an estimate, as no GPU has run it yet; nothing downloaded: the CLIP model
has random weights)::

    HF_HUB_OFFLINE=1 python benchmarks/gpu_check.py --device cuda --out gpu-check

and here, on the CPU, to exercise every code path (under 3 minutes on 2 cores)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gpu_check.py --device cpu --size small \
        --out /tmp/gpu-check

It writes ``OUT/gpu_check.json`` (every figure, the environment, errors with their
traceback) and ``OUT/gpu_check.md`` (the same as Markdown tables), and rewrites both after
every section, so a run stopped by a time limit still leaves the sections it finished.
One section failing (an error, an out-of-memory) is recorded and the next one runs.
Options: ``--size full|small|tiny`` (``tiny`` is what ``tests/test_gpu_check.py`` runs),
``--sections a,b`` (a subset, by name), ``--seed``.

Correctness (the device against the CPU, on the same random inputs, fixed seeds):

- ``gradnorm``: :func:`skgradnorm.gradnorm_scores` in float32 and float64 (scores within
  ``rtol``; assignments equal except at near-ties of the two best centres; the selections of
  ``select_top_k_per_center`` identical, or every differing noun explained by a near-tie);
- ``kmeans``: :func:`skgradnorm.spherical_kmeans` from the same seed (objective within a
  relative tolerance, adjusted Rand index of the labels), float32 and float64;
- ``retrieval``: ``text_counterparts`` (max abs difference), float32 and float64;
- ``clip``: ``CLIPEncoder.encode_texts``, ``encode_nouns`` (the fast tokenizer included,
  whose ids are checked against open_clip's) and ``transform`` on the device in fp32 (max
  abs difference) and fp16 (min cosine >= 0.999) against the CPU in fp32, with the same
  random weights (saved once to a temporary file); and the fast text path against
  open_clip's own ``encode_text`` on the device.

Speed (on the device, after a warm-up, ``torch.cuda.synchronize()`` around every timing):

- ``noun_bank``: ``encode_nouns`` with the paper's seven templates, ``cache_dir=False``, on
  a slice of the paper bank (every ``stride``-th distinct noun, so that the slice's prompt
  lengths are the bank's; thinner if the warm-up predicts more than ``budget_s``),
  extrapolated linearly to the 119,034 distinct nouns; the tokenization alone; and two text
  batch sizes side by side;
- ``images``: ``transform`` on uint8 arrays in memory and on JPEG files, with several
  ``num_workers``, and the image tower alone on a ready batch;
- ``kmeans_speed``: 50,000 x 512 into 1,000; 1.28M x 512 into 2,000 on all rows and with
  ``max_samples``;
- ``scoring_speed``: GradNorm scoring + selection, 119,034 nouns x 2,000 centres;
- ``heads_speed``: one epoch of TAC's heads (``train_heads``) at CIFAR-10 scale (50,000 x 512,
  K=10, batch 512) and at ImageNet-1K scale (1.28M x 512, K=1,000, batch 8,192: a few steps
  are timed first; the whole epoch runs when that predicts under ``max_epoch_s``, otherwise
  the epoch is extrapolated from the timed steps, and the table says which); and the
  exact neighbour search (torch backend) at CIFAR-10 scale, and at ImageNet-1K scale
  extrapolated from 16,384 timed queries (what ``neighbor_algorithm="auto"`` runs on a GPU).

The inputs are synthetic (clustered random unit vectors, random images, random weights):
speed and agreement do not depend on what the vectors mean. Dated results go in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PAPER_BANK_DISTINCT = 119_034  # distinct strings of wordnet_nouns("paper")

# Each section's sizes, per --size. "full" is the GPU run; "small" runs on 2 CPU cores in
# under 3 minutes; "tiny" is the test's.
_TINY_CLIP = "skgradnorm-gpucheck-tiny"
SIZES = {
    "full": {
        "gradnorm": {"n_nouns": 50_000, "n_centers": 1_000, "d": 512, "top_k": 5},
        "kmeans": {"n": 20_000, "d": 256, "k": 200, "max_iter": 30},
        "retrieval": {"n_images": 20_000, "n_nouns": 3_000, "d": 512},
        "clip": {"model": "ViT-B-32", "n_texts": 64, "n_nouns": 96, "n_images": 32},
        "noun_bank": {
            "model": "ViT-B-32",
            "stride": 4,
            "budget_s": 90.0,
            "text_batch": 256,
            "alt_batch": 1024,
        },
        "images": {
            "model": "ViT-B-32",
            "n_memory": 2048,
            "n_jpeg": 2048,
            "side": 256,
            "batch": 256,
            "workers": [0, 8],
        },
        "kmeans_speed": {
            "runs": [
                {"n": 50_000, "k": 1_000, "max_iter": 20, "max_samples": None},
                {"n": 1_280_000, "k": 2_000, "max_iter": 10, "max_samples": None},
                {"n": 1_280_000, "k": 2_000, "max_iter": 10, "max_samples": 262_144},
            ],
            "d": 512,
        },
        "scoring_speed": {"n_nouns": PAPER_BANK_DISTINCT, "n_centers": 2_000, "d": 512},
        "heads_speed": {
            "cifar": {"n": 50_000, "k": 10, "batch": 512},
            "imagenet": {"n": 1_280_000, "k": 1_000, "batch": 8_192, "probe_steps": 4},
            "d": 512,
            "max_epoch_s": 45.0,
        },
    },
    "small": {
        "gradnorm": {"n_nouns": 6_000, "n_centers": 120, "d": 128, "top_k": 5},
        "kmeans": {"n": 4_000, "d": 64, "k": 40, "max_iter": 30},
        "retrieval": {"n_images": 3_000, "n_nouns": 400, "d": 128},
        "clip": {"model": _TINY_CLIP, "n_texts": 16, "n_nouns": 16, "n_images": 8},
        "noun_bank": {
            "model": _TINY_CLIP,
            "stride": 200,
            "budget_s": 60.0,
            "text_batch": 256,
            "alt_batch": None,
        },
        "images": {
            "model": _TINY_CLIP,
            "n_memory": 96,
            "n_jpeg": 96,
            "side": 64,
            "batch": 32,
            "workers": [0, 2],
        },
        "kmeans_speed": {
            "runs": [
                {"n": 10_000, "k": 50, "max_iter": 10, "max_samples": None},
                {"n": 40_000, "k": 100, "max_iter": 5, "max_samples": 8_192},
            ],
            "d": 64,
        },
        "scoring_speed": {"n_nouns": 12_000, "n_centers": 200, "d": 128},
        "heads_speed": {
            "cifar": {"n": 5_000, "k": 10, "batch": 512},
            "imagenet": {"n": 40_000, "k": 100, "batch": 2_048, "probe_steps": 2},
            "d": 64,
            "max_epoch_s": 5.0,
        },
    },
    "tiny": {
        "gradnorm": {"n_nouns": 800, "n_centers": 24, "d": 32, "top_k": 3},
        "kmeans": {"n": 600, "d": 16, "k": 8, "max_iter": 10},
        "retrieval": {"n_images": 300, "n_nouns": 50, "d": 32},
        "clip": {"model": _TINY_CLIP, "n_texts": 4, "n_nouns": 4, "n_images": 3},
        "noun_bank": {
            "model": _TINY_CLIP,
            "stride": 4_000,
            "budget_s": 60.0,
            "text_batch": 64,
            "alt_batch": None,
        },
        "images": {
            "model": _TINY_CLIP,
            "n_memory": 8,
            "n_jpeg": 8,
            "side": 40,
            "batch": 4,
            "workers": [0],
        },
        "kmeans_speed": {
            "runs": [{"n": 2_000, "k": 10, "max_iter": 3, "max_samples": 500}],
            "d": 16,
        },
        "scoring_speed": {"n_nouns": 1_000, "n_centers": 20, "d": 32},
        "heads_speed": {
            "cifar": {"n": 600, "k": 4, "batch": 128},
            "imagenet": {"n": 2_000, "k": 20, "batch": 256, "probe_steps": 1},
            "d": 16,
            "max_epoch_s": 1.0,
        },
    },
}

# The tolerances of the correctness checks, by dtype. Two correct float32 kernels differ by
# their rounding (other summation orders and blockings). Measured here on the "full" inputs,
# float32 against float64 on the CPU: scores 7.7e-6 relative, log scores 7.9e-6, retrieval
# 3.2e-7 (so two float32 devices differ by about twice that); the limits leave a margin of
# about 10. The smallest best-vs-second cosine margin among 20,000 nouns was 2.9e-7: a flip
# of the argmax centre is a near-tie when the margin is under ``tie`` (a relative score gap
# under ``tie`` is a near-tie of the selection's cut too).
TOL = {
    "float32": {"score_rtol": 1e-4, "tie": 1e-4, "retrieval_atol": 1e-5, "kmeans_rtol": 1e-3},
    "float64": {"score_rtol": 1e-9, "tie": 1e-10, "retrieval_atol": 1e-10, "kmeans_rtol": 1e-9},
}
KMEANS_MIN_ARI = 0.95
# ViT-B-32 (random weights) in float32 against float64 on the CPU: max abs 1.1e-7 (texts),
# 8e-8 (images). The image tower's patch convolution may run in TF32 on CUDA (torch's
# default torch.backends.cudnn.allow_tf32=True); rounding its inputs to TF32 here moved
# the image embeddings by 1.5e-5. Embedding entries are about 0.035 in size.
CLIP_FP32_ATOL = {"texts": 2e-5, "nouns": 2e-5, "images": 2e-4}
CLIP_FP16_MIN_COS = 0.999
GRADNORM_TEMPERATURE = 0.05  # GradNormNounSelector's default filter temperature
RETRIEVAL_TEMPERATURE = 0.008  # its default retrieval temperature


# ----------------------------------------------------------------------------- the run


class SkipSection(Exception):
    """Raised by a section that cannot run here; the message is the reason."""


class Section:
    """What one section recorded: checks (correctness) and timings (speed)."""

    def __init__(self, run, name, kind, params):
        self.run, self.name = run, name
        self.doc = {
            "kind": kind,
            "status": "running",
            "params": params,
            "checks": [],
            "timings": [],
            "notes": [],
            "skipped": [],
        }

    def check(self, name, value, limit, op="<=", note=""):
        value = float(value)
        passed = bool(value <= limit) if op == "<=" else bool(value >= limit)
        self.doc["checks"].append(
            {"name": name, "value": value, "op": op, "limit": float(limit), "passed": passed}
            | ({"note": note} if note else {})
        )
        self.run.log(f"  {name}: {value:.3g} ({op} {limit:g}) {'ok' if passed else 'FAILED'}")
        return passed

    def info(self, name, value):
        """A figure shown beside the checks, with no limit (a count of near-ties, say)."""
        self.doc["checks"].append(
            {"name": name, "value": float(value), "passed": True, "info": True}
        )
        self.run.log(f"  {name}: {float(value):.3g}")

    def timing(self, step, seconds, *, size="", count=None, unit="", note=""):
        rate = None if count is None or seconds <= 0 else count / seconds
        self.doc["timings"].append(
            {
                "step": step,
                "size": size,
                "seconds": float(seconds),
                "rate": rate,
                "unit": unit,
                "note": note,
            }
        )
        shown = "" if rate is None else f", {rate:,.0f} {unit}"
        self.run.log(f"  {step} [{size}]: {seconds:.3f} s{shown} {note}")

    def skip(self, what, reason):
        """Record a part of the section that cannot run here, and why."""
        self.doc["skipped"].append({"what": what, "reason": reason})
        self.run.log(f"  skipped {what}: {reason}")

    def note(self, text):
        self.doc["notes"].append(text)
        self.run.log(f"  note: {text}")


class Run:
    """The device, the sizes, the output files and the timer of one run."""

    def __init__(self, device, size, out_dir, seed, argv):
        self.device = torch.device(device)
        self.cpu = torch.device("cpu")
        self.size, self.seed = size, seed
        self.out_dir = Path(out_dir)
        self.start = time.perf_counter()
        self.tmp = Path(tempfile.mkdtemp(prefix="skgradnorm-gpucheck-"))
        self._weights = {}
        self.doc = {"meta": environment(self.device, size, argv), "sections": {}}

    def log(self, text):
        print(f"[{time.perf_counter() - self.start:7.1f} s] {text}", flush=True)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def clock(self):
        """``with run.clock() as t: ...`` then ``t()`` is the block's wall time (synced)."""
        self.sync()
        start = time.perf_counter()
        box = [None]
        try:
            yield lambda: box[0]
        finally:
            self.sync()
            box[0] = time.perf_counter() - start

    def weights(self, model_name):
        """A saved random state dict of ``model_name`` (made once), for every encoder."""
        if model_name not in self._weights:
            open_clip = import_open_clip()
            if model_name == _TINY_CLIP:
                open_clip.factory._MODEL_CONFIGS[_TINY_CLIP] = {
                    "embed_dim": 32,
                    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
                    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64}
                    | {"heads": 4, "layers": 2},
                }
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = open_clip.create_model(model_name, pretrained=None)
            path = self.tmp / f"{model_name}.pt"
            torch.save(model.state_dict(), path)
            self._weights[model_name] = str(path)
        return self._weights[model_name]

    def encoder(self, model_name, device, **params):
        from skgradnorm._clip._encoder import CLIPEncoder

        weights = self.weights(model_name)
        return CLIPEncoder(
            model_name, pretrained=weights, device=str(device), cache_dir=False, **params
        )

    def write(self):
        self.doc["meta"]["wall_s"] = round(time.perf_counter() - self.start, 1)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("gpu_check.json", json.dumps(self.doc, indent=1, default=_jsonable)),
            ("gpu_check.md", to_markdown(self.doc)),
        ):
            part = self.out_dir / (name + ".part")
            part.write_text(text + "\n")
            os.replace(part, self.out_dir / name)

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def import_open_clip():
    """open_clip, or :class:`SkipSection` when it is not installed (a bare GPU image)."""
    from skgradnorm._utils._compat import import_open_clip as _import

    try:
        return _import()
    except ImportError as exc:
        raise SkipSection(
            f"open_clip cannot be imported ({exc}): install open_clip_torch (and ftfy)"
        ) from exc


def environment(device, size, argv):
    """What the figures depend on: versions, the device, torch's float32 settings."""
    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": "python benchmarks/gpu_check.py " + " ".join(argv),
        "size": size,
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
    try:
        meta["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        meta["commit"] = ""
    from skgradnorm import __version__

    meta["skgradnorm"] = __version__
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    return meta


# ----------------------------------------------------------------------------- data


def clustered_rows(n, d, k, seed, *, spread=0.35, dtype=np.float32, device="cpu", tensor=False):
    """``n`` unit rows in ``k`` clusters (a random centre plus Gaussian noise, normalised).

    Made with torch on ``device`` (fast for the 1.28M-row speed inputs), returned as numpy
    (or as the tensor on ``device`` with ``tensor=True``). The same seed on the CPU gives the
    same rows, whatever the device of the check.
    """
    g = torch.Generator(device=device).manual_seed(seed)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    centers = torch.randn(k, d, generator=g, device=device, dtype=tdt)
    centers /= torch.linalg.vector_norm(centers, dim=1, keepdim=True)
    labels = torch.randint(0, k, (n,), generator=g, device=device)
    X = torch.randn(n, d, generator=g, device=device, dtype=tdt).mul_(spread / d**0.5)
    X += centers[labels]
    X /= torch.linalg.vector_norm(X, dim=1, keepdim=True)
    return X if tensor else X.cpu().numpy()


def smooth_images(n, side, seed):
    """``n`` random but smooth uint8 pictures (upsampled noise: JPEG sizes like photos')."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    out = np.empty((n, side, side, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = np.asarray(Image.fromarray(low[i]).resize((side, side), Image.BILINEAR))
    return out


# ----------------------------------------------------------------------------- correctness


def check_gradnorm(run, sec, p):
    from skgradnorm import gradnorm_scores
    from skgradnorm._gradnorm import select_top_k_per_center

    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        tol = TOL[name]
        E = clustered_rows(p["n_nouns"], p["d"], p["n_centers"] // 4, run.seed, dtype=dtype)
        W = clustered_rows(p["n_centers"], p["d"], p["n_centers"] // 4, run.seed, dtype=dtype)
        out = {}
        for key, dev in (("cpu", run.cpu), ("device", run.device)):
            with run.clock() as t:
                s, a, log_s = gradnorm_scores(
                    E, W, temperature=GRADNORM_TEMPERATURE, device=dev, return_log=True
                )
            sel = select_top_k_per_center(s, a, p["top_k"], tiebreak=log_s)
            out[key] = (s, a, log_s, sel, t())
        (s0, a0, l0, sel0, t0), (s1, a1, l1, sel1, t1) = out["cpu"], out["device"]
        size = f"{len(E):,} nouns x {len(W):,} centres x d={p['d']}, {name}"
        sec.timing(f"scores on the CPU ({name})", t0, size=size, count=len(E), unit="nouns/s")
        sec.timing(f"scores on the device ({name})", t1, size=size, count=len(E), unit="nouns/s")
        # Assignment flips are allowed only at near-ties of the two best logits (float64).
        logits = E.astype(np.float64) @ W.astype(np.float64).T
        top2 = np.partition(logits, -2, axis=1)[:, -2:]
        margin = np.abs(top2[:, 1] - top2[:, 0])
        del logits
        flipped = a0 != a1
        sec.info(f"{name}: nouns whose centre differs", flipped.sum())
        sec.check(
            f"{name}: largest best-vs-second cosine margin among those",
            margin[flipped].max() if flipped.any() else 0.0,
            tol["tie"],
        )
        same = ~flipped
        rel = np.abs(s1[same] - s0[same]) / np.maximum(np.abs(s0[same]), np.finfo(dtype).tiny)
        sec.check(f"{name}: scores, max relative difference", rel.max(), tol["score_rtol"])
        sec.check(
            f"{name}: log scores, max abs difference",
            np.abs(l1[same] - l0[same]).max(),
            tol["score_rtol"],
        )
        unexplained, n_diff = _unexplained_selection_changes(
            sel0, sel1, s0, a0, a1, flipped, tol["tie"]
        )
        sec.info(f"{name}: nouns in one selection only", n_diff)
        sec.check(f"{name}: selected nouns differing, not at a near-tie", unexplained, 0)


def _unexplained_selection_changes(sel0, sel1, s0, a0, a1, flipped, tie):
    """``(unexplained, n_diff)``: nouns in one selection only, and how many of them are not
    explained by a near-tie.

    The changes in a centre are explained when a noun moved into or out of it (a flip of its
    two best centres, which the margin check above requires to be a near-tie), or when the
    CPU scores of the nouns that changed there are within ``tie`` (relative) of each other:
    the two devices only ordered a near-tie at the cut differently.
    """
    diff = np.setxor1d(sel0, sel1)
    moved = set(a0[flipped].tolist()) | set(a1[flipped].tolist())
    unexplained = 0
    for c in np.unique(a0[diff]):
        if int(c) in moved:
            continue
        members = diff[a0[diff] == c]
        spread = (s0[members].max() - s0[members].min()) / max(abs(s0[members].max()), 1e-300)
        if members.size < 2 or spread > tie:
            unexplained += int(members.size)
    return unexplained, int(diff.size)


def check_kmeans(run, sec, p):
    from sklearn.metrics import adjusted_rand_score

    from skgradnorm import spherical_kmeans

    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        X = clustered_rows(p["n"], p["d"], p["k"], run.seed + 1, dtype=dtype)
        res = {}
        for key, dev in (("cpu", run.cpu), ("device", run.device)):
            with run.clock() as t:
                res[key] = spherical_kmeans(
                    X,
                    p["k"],
                    n_init=1,
                    max_iter=p["max_iter"],
                    random_state=run.seed,
                    device=dev,
                    backend="torch",
                )
            sec.timing(
                f"{key} ({name}, torch backend)",
                t(),
                size=f"{p['n']:,} x {p['d']} -> {p['k']}",
                note=f"{res[key][3]} iterations; objective/row {res[key][2] / p['n']:.6f}",
            )
        (_, l0, o0, _), (_, l1, o1, _) = res["cpu"], res["device"]
        sec.check(
            f"{name}: objective, relative difference",
            abs(o1 - o0) / abs(o0),
            TOL[name]["kmeans_rtol"],
        )
        sec.check(f"{name}: ARI of the labels", adjusted_rand_score(l0, l1), KMEANS_MIN_ARI, ">=")
    _faiss_row(run, sec, X, p)


def _faiss_row(run, sec, X, p):
    """faiss runs only on the CPU in the package: compare it to the device when installed."""
    from skgradnorm._cluster._search import faiss_available

    if not faiss_available():
        sec.skip("faiss (CPU) against the device", "faiss is not installed here")
        return
    from sklearn.metrics import adjusted_rand_score

    from skgradnorm import spherical_kmeans

    X = X.astype(np.float32)
    kw = {"n_init": 1, "max_iter": p["max_iter"], "random_state": run.seed}
    _, lf, of, _ = spherical_kmeans(X, p["k"], device="cpu", backend="faiss", **kw)
    _, ld, od, _ = spherical_kmeans(X, p["k"], device=run.device, backend="torch", **kw)
    sec.check(
        "faiss (CPU) vs device torch: objective, relative difference",
        abs(of - od) / od,
        TOL["float32"]["kmeans_rtol"],
    )
    sec.check("faiss (CPU) vs device torch: ARI", adjusted_rand_score(lf, ld), KMEANS_MIN_ARI, ">=")


def check_retrieval(run, sec, p):
    from skgradnorm._retrieval import text_counterparts

    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        U = clustered_rows(p["n_images"], p["d"], 50, run.seed + 2, dtype=dtype)
        E = clustered_rows(p["n_nouns"], p["d"], 50, run.seed + 3, dtype=dtype)
        out = {}
        for key, dev in (("cpu", run.cpu), ("device", run.device)):
            with run.clock() as t:
                out[key] = text_counterparts(U, E, temperature=RETRIEVAL_TEMPERATURE, device=dev)
            sec.timing(f"{key} ({name})", t(), size=f"{len(U):,} images x {len(E):,} nouns")
        sec.check(
            f"{name}: max abs difference",
            np.abs(out["device"] - out["cpu"]).max(),
            TOL[name]["retrieval_atol"],
        )


def _clip_inputs(run, p):
    from skgradnorm.vocabulary import PAPER_TEMPLATES, wordnet_nouns

    rng = np.random.default_rng(run.seed)
    bank = list(dict.fromkeys(wordnet_nouns("paper")))
    picked = [bank[i] for i in rng.choice(len(bank), size=p["n_nouns"], replace=False)]
    # Nouns that the fast tokenizer must send to open_clip's own tokenizer (non-ASCII, "&",
    # a boundary inside a chunk) or split at the template's punctuation: both paths run.
    awkward = ["café", "AT&T", "Mr.", "rock'n'roll", "hot_dog", "2001", "<unk>", "O'Brien"]
    nouns = picked + awkward[: max(2, p["n_nouns"] // 4)]
    # An empty text, a non-ASCII one and one longer than the 77-token context come first.
    texts = ["", "a photo of 猫.", "x " * 60]
    texts += [PAPER_TEMPLATES[i % 7].format(n) for i, n in enumerate(picked)]
    texts = texts[: max(p["n_texts"], 3)]
    sizes = [(224, 224), (40, 300), (513, 97), (64, 64)]
    images = [
        rng.integers(0, 256, size=(*sizes[i % len(sizes)], 3), dtype=np.uint8)
        for i in range(p["n_images"])
    ]
    return texts, nouns, images


def check_clip(run, sec, p):
    import_open_clip()  # skip the section at once if it is missing
    from skgradnorm._clip._tokenizer import tokenize_prompts
    from skgradnorm.vocabulary import PAPER_TEMPLATES

    texts, nouns, images = _clip_inputs(run, p)
    sec.note(f"model {p['model']} with random weights (seed {run.seed}), saved and reloaded")
    ref_enc = run.encoder(p["model"], run.cpu, precision="fp32")
    tok = import_open_clip().get_tokenizer(p["model"])
    prompts = [t.format(n) for n in nouns for t in PAPER_TEMPLATES]
    fast = tokenize_prompts(tok, nouns, PAPER_TEMPLATES)
    sec.check("fast tokenizer used (1 = yes)", fast is not None, 1, ">=")
    if fast is not None:
        mismatched = (fast.numpy() != tok(prompts).numpy()).any(axis=1).sum()
        sec.check("fast tokenizer: prompts whose ids differ from open_clip's", mismatched, 0)

    def embed(enc):
        with run.clock() as t:
            got = {
                "texts": enc.encode_texts(texts),
                "nouns": enc.encode_nouns(nouns),
                "images": enc.transform(images),
            }
        return got, t()

    ref, t_ref = embed(ref_enc)
    sec.timing("CPU fp32 (reference)", t_ref, size=_clip_size(texts, nouns, images))
    for precision in ("fp32", "fp16"):
        enc = run.encoder(p["model"], run.device, precision=precision)
        embed(enc)  # warm-up (model load, kernels)
        got, t_dev = embed(enc)
        sec.timing(f"device {precision}", t_dev, size=_clip_size(texts, nouns, images))
        for what in ("texts", "nouns", "images"):
            cos = (got[what] * ref[what]).sum(axis=1)
            if precision == "fp32":
                diff = np.abs(got[what] - ref[what]).max()
                sec.check(f"fp32 {what}: max abs diff to CPU", diff, CLIP_FP32_ATOL[what])
            else:
                sec.check(
                    f"fp16 {what}: min cosine to CPU fp32", cos.min(), CLIP_FP16_MIN_COS, ">="
                )
        _check_fast_text_path(run, sec, enc, tok, texts, precision)


def _check_fast_text_path(run, sec, enc, tok, texts, precision):
    """The cut-context text path against open_clip's ``encode_text``, same device and precision."""
    model = enc._get_bundle().model
    with torch.inference_mode():
        plain = model.encode_text(tok(texts).to(run.device)).float().cpu().numpy()
    plain /= np.maximum(np.linalg.norm(plain, axis=1, keepdims=True), 1e-12)
    cos = (plain * enc.encode_texts(texts)).sum(axis=1)
    limit = 0.99999 if precision == "fp32" else CLIP_FP16_MIN_COS
    sec.check(
        f"{precision}: fast text path vs open_clip encode_text, min cosine", cos.min(), limit, ">="
    )


def _clip_size(texts, nouns, images):
    return f"{len(texts)} texts, {len(nouns)} nouns x 7 templates, {len(images)} images"


# ----------------------------------------------------------------------------- speed


def speed_noun_bank(run, sec, p):
    import_open_clip()  # skip the section at once if it is missing
    from skgradnorm._clip._tokenizer import tokenize_prompts
    from skgradnorm.vocabulary import PAPER_TEMPLATES, wordnet_nouns

    bank = list(dict.fromkeys(wordnet_nouns("paper")))
    n_t = len(PAPER_TEMPLATES)
    enc = run.encoder(p["model"], run.device, text_batch_size=p["text_batch"])
    enc.load_model()
    warm = bank[1 :: p["stride"]][: min(512, len(bank) // p["stride"] // 2)]
    with run.clock() as t_warm:
        enc.encode_nouns(warm)  # warm-up: kernels, tokenizer
    # A slower device than planned gets a thinner slice: the warm-up (first calls included,
    # so an overestimate) predicts the slice's time, kept under budget_s.
    stride = max(p["stride"], int(np.ceil(len(bank) * t_warm() / len(warm) / p["budget_s"])))
    if stride > p["stride"]:
        sec.note(f"slice thinned to every {stride}th noun to stay under {p['budget_s']:.0f} s")
    part = bank[::stride]
    precision = enc._get_bundle().precision
    with run.clock() as t:
        enc.encode_nouns(part)
    sec.timing(
        f"encode_nouns, {precision}, text batch {p['text_batch']}",
        t(),
        size=f"{len(part):,} nouns (every {stride}th of the bank) x {n_t} templates",
        count=len(part) * n_t,
        unit="prompts/s",
        note=f"{len(part) / t():,.0f} nouns/s",
    )
    whole = t() * len(bank) / len(part)
    sec.timing(
        "whole paper bank, extrapolated",
        whole,
        size=f"{len(bank):,} distinct nouns x {n_t} = {len(bank) * n_t:,} prompts",
        count=len(bank) * n_t,
        unit="prompts/s",
        note=f"extrapolated linearly from the slice's {len(part):,} nouns, not measured",
    )
    tok = enc._get_bundle().tokenizer
    with run.clock() as t_tok:
        tokenize_prompts(tok, part, PAPER_TEMPLATES)
    sec.timing(
        "of which tokenization (warm tokenizer, CPU)",
        t_tok(),
        size=f"{len(part):,} nouns x {n_t}",
        count=len(part) * n_t,
        unit="prompts/s",
    )
    if p["alt_batch"]:
        # The text batch size, side by side on the same nouns (tokenizer warm for both).
        sub = part[: max(1, len(part) // 4)]
        for batch in (p["text_batch"], p["alt_batch"]):
            enc.set_params(text_batch_size=batch)
            with run.clock() as t_b:
                enc.encode_nouns(sub)
            sec.timing(
                f"encode_nouns, {precision}, text batch {batch} (side by side)",
                t_b(),
                size=f"{len(sub):,} nouns (the slice's first quarter) x {n_t}",
                count=len(sub) * n_t,
                unit="prompts/s",
            )


def speed_images(run, sec, p):
    import_open_clip()  # skip the section at once if it is missing
    side, n_mem = p["side"], p["n_memory"]
    enc = run.encoder(p["model"], run.device, batch_size=p["batch"])
    arrays = smooth_images(n_mem, side, run.seed)
    enc.transform(arrays[: p["batch"]])  # warm-up
    bundle = enc._get_bundle()
    size = f"{side}x{side} -> {p['model']} {bundle.precision}, batch {p['batch']}"
    for workers in p["workers"]:
        enc.set_params(num_workers=workers)
        with run.clock() as t:
            enc.transform(arrays)
        sec.timing(
            f"uint8 arrays in memory, num_workers={workers}",
            t(),
            size=f"{n_mem:,} images {size}",
            count=n_mem,
            unit="img/s",
        )
    folder = run.tmp / "jpeg"
    folder.mkdir(exist_ok=True)
    from PIL import Image

    paths = []
    for i in range(p["n_jpeg"]):
        paths.append(str(folder / f"{i:06d}.jpg"))
        Image.fromarray(arrays[i % n_mem]).save(paths[-1], quality=90)
    kib = sum(os.path.getsize(q) for q in paths) / len(paths) / 1024
    for workers in p["workers"]:
        enc.set_params(num_workers=workers)
        with run.clock() as t:
            enc.transform(paths)
        sec.timing(
            f"JPEG files, num_workers={workers}",
            t(),
            count=len(paths),
            unit="img/s",
            size=f"{len(paths):,} files ({kib:.1f} KiB each) {size}",
        )
    # The image tower alone, on a preprocessed batch already on the device.
    image_size = bundle.model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, (tuple, list)) else image_size
    x = torch.randn(p["batch"], 3, image_size, image_size, device=run.device)
    x = x.to(bundle.image_dtype)
    reps = 10
    with torch.inference_mode():
        bundle.model.encode_image(x)
        with run.clock() as t:
            for _ in range(reps):
                bundle.model.encode_image(x)
    sec.timing(
        "image tower alone (no decoding)",
        t(),
        count=reps * p["batch"],
        unit="img/s",
        size=f"{reps} batches of {p['batch']} at {image_size}px",
    )


def speed_kmeans(run, sec, p):
    from skgradnorm import spherical_kmeans

    d = p["d"]
    warm = clustered_rows(4_000, d, 20, 0, device=run.device)
    spherical_kmeans(warm, 20, n_init=1, max_iter=2, random_state=0, device=run.device)
    cache = {}
    for r in p["runs"]:
        if r["n"] not in cache:
            cache.clear()
            gc.collect()
            cache[r["n"]] = clustered_rows(r["n"], d, r["k"], run.seed, device=run.device)
        X = cache[r["n"]]
        with run.clock() as t:
            _, _, obj, n_iter = spherical_kmeans(
                X,
                r["k"],
                n_init=1,
                max_iter=r["max_iter"],
                tol=0.0,
                random_state=run.seed,
                device=run.device,
                max_samples=r["max_samples"],
            )
        fit_on = "all rows" if r["max_samples"] is None else f"max_samples={r['max_samples']:,}"
        sec.timing(
            f"spherical_kmeans, {fit_on}",
            t(),
            size=f"{r['n']:,} x {d} -> {r['k']:,}, {n_iter} iterations, 1 restart",
            note=f"seeding and the host-to-device copy included; objective/row {obj / r['n']:.5f}",
        )


def speed_scoring(run, sec, p):
    from skgradnorm import gradnorm_scores
    from skgradnorm._gradnorm import select_top_k_per_center

    E = clustered_rows(p["n_nouns"], p["d"], 500, run.seed, device=run.device)
    W = clustered_rows(p["n_centers"], p["d"], 500, run.seed + 1, device=run.device)
    kw = {"temperature": GRADNORM_TEMPERATURE, "device": run.device, "return_log": True}
    gradnorm_scores(E[:10_000], W, **kw)  # warm-up
    size = f"{len(E):,} nouns x {len(W):,} centres x d={p['d']}, float32"
    with run.clock() as t:
        s, a, log_s = gradnorm_scores(E, W, **kw)
    sec.timing(
        "gradnorm_scores (numpy in, numpy out)", t(), size=size, count=len(E), unit="nouns/s"
    )
    with run.clock() as t_sel:
        sel = select_top_k_per_center(s, a, 5, tiebreak=log_s)
    sec.timing(
        "select_top_k_per_center (top_k=5, CPU)",
        t_sel(),
        size=size,
        note=f"{sel.size:,} nouns kept",
    )
    E_t, W_t = (torch.from_numpy(x).to(run.device) for x in (E, W))
    with run.clock() as t_dev:
        gradnorm_scores(E_t, W_t, **kw)
    sec.timing(
        "gradnorm_scores (inputs already on the device)",
        t_dev(),
        size=size,
        count=len(E),
        unit="nouns/s",
    )


def _neighbours(n_rows, n, seed=0):
    """Random neighbour lists (``n_rows`` x 50) of the first ``n`` rows: the speed of the
    heads does not depend on which rows are neighbours."""
    return np.random.default_rng(seed).integers(0, n, size=(n_rows, 50), dtype=np.int32)


def _train(U, nb, k, batch, seed=0):
    """``train_heads`` for one epoch on the first ``len(nb)`` rows of ``U`` (as T too)."""
    from skgradnorm._distill import train_heads

    n = len(nb)
    return train_heads(
        U[:n],
        U[:n],
        nb,
        nb,
        k,
        n_epochs=1,
        batch_size=batch,
        temperature=0.5 if k <= 10 else 5.0,
        entropy_weight=5.0,
        learning_rate=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        rng=np.random.RandomState(seed),
    )


#: Query rows timed by the ImageNet-scale exact neighbour search (then extrapolated).
EXACT_PROBE_QUERIES = 16_384


def _probe_exact_search(run, sec, U, *, size):
    """The exact neighbour search of ``nearest_neighbors(algorithm="exact",
    backend="torch")`` (what ``neighbor_algorithm="auto"`` runs on a GPU at any size): the
    same blocks of query rows against every row and the same top-k, timed on the first
    :data:`EXACT_PROBE_QUERIES` rows and multiplied by ``n / queries`` (not measured whole)."""
    from skgradnorm._utils._torch import default_chunk_size, iter_chunks

    n = U.shape[0]
    queries = min(EXACT_PROBE_QUERIES, n)
    chunk = default_chunk_size(n, U.device, (64 << 20) if U.device.type == "cpu" else None)
    with run.clock() as t:
        for sl in iter_chunks(queries, chunk):
            torch.topk(U[sl] @ U.T, 51, dim=1)
    sec.timing(
        "exact neighbour search, one modality (torch), extrapolated",
        t() * n / queries,
        size=size,
        count=n,
        unit="queries/s",
        note=f"{queries:,} of {n:,} queries timed in blocks of {chunk:,} rows, multiplied "
        "by n / queries: not measured whole",
    )


def speed_heads(run, sec, p):
    d = p["d"]
    for scale in ("cifar", "imagenet"):
        q = p[scale]
        U = clustered_rows(q["n"], d, q["k"], run.seed, device=run.device, tensor=True)
        steps_per_epoch = q["n"] // q["batch"]
        size = f"{q['n']:,} x {d}, K={q['k']:,}, batch {q['batch']:,}"
        _train(U, _neighbours(q["batch"], q["batch"]), q["k"], q["batch"])  # warm-up
        probe = min(q.get("probe_steps") or steps_per_epoch, steps_per_epoch)
        nb = _neighbours(probe * q["batch"], probe * q["batch"])
        with run.clock() as t:
            _, _, curve = _train(U, nb, q["k"], q["batch"])
        per_step = t() / probe
        if probe < steps_per_epoch and per_step * steps_per_epoch > p["max_epoch_s"]:
            sec.timing(
                f"one epoch of the heads ({scale} scale), extrapolated",
                per_step * steps_per_epoch,
                size=size,
                count=steps_per_epoch * q["batch"],
                unit="samples/s",
                note=f"{probe} of {steps_per_epoch} steps timed ({per_step:.3f} s/step), "
                "multiplied by the steps of an epoch: not measured",
            )
        else:
            if probe < steps_per_epoch:
                nb = _neighbours(q["n"], q["n"])
                with run.clock() as t:
                    _, _, curve = _train(U, nb, q["k"], q["batch"])
            sec.timing(
                f"one epoch of the heads ({scale} scale)",
                t(),
                size=size,
                count=steps_per_epoch * q["batch"],
                unit="samples/s",
                note=f"{steps_per_epoch} steps, measured; loss {curve[0]:.3f}",
            )
        if scale == "imagenet":
            _probe_exact_search(run, sec, U, size=f"{q['n']:,} x {d}, 50 neighbours")
        del U, nb
        gc.collect()
    from skgradnorm._cluster._neighbors import nearest_neighbors

    q = p["cifar"]
    X = clustered_rows(q["n"], d, q["k"], run.seed, device=run.device)
    with run.clock() as t:
        nearest_neighbors(X, min(50, q["n"] - 1), backend="torch", device=run.device)
    sec.timing(
        "neighbour search, one modality (torch backend)",
        t(),
        count=q["n"],
        size=f"{q['n']:,} x {d}, 50 neighbours",
        unit="queries/s",
    )


SECTIONS = {
    "gradnorm": ("correctness", check_gradnorm),
    "kmeans": ("correctness", check_kmeans),
    "retrieval": ("correctness", check_retrieval),
    "clip": ("correctness", check_clip),
    "noun_bank": ("speed", speed_noun_bank),
    "images": ("speed", speed_images),
    "kmeans_speed": ("speed", speed_kmeans),
    "scoring_speed": ("speed", speed_scoring),
    "heads_speed": ("speed", speed_heads),
}


def run_section(run, name):
    kind, fn = SECTIONS[name]
    params = SIZES[run.size][name]
    sec = Section(run, name, kind, params)
    run.doc["sections"][name] = sec.doc
    run.log(f"{name} ({kind})")
    start = time.perf_counter()
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    try:
        fn(run, sec, params)
    except SkipSection as exc:
        sec.doc["status"] = "skipped"
        sec.doc["reason"] = str(exc)
        run.log(f"  skipped: {exc}")
    except Exception as exc:  # one section's failure must not stop the others
        sec.doc["status"] = "error"
        sec.doc["error"] = f"{type(exc).__name__}: {exc}"
        sec.doc["traceback"] = traceback.format_exc()[-4000:]
        run.log(f"  ERROR {sec.doc['error']}")
    else:
        failed = [c for c in sec.doc["checks"] if not c["passed"]]
        empty = not sec.doc["checks"] and not sec.doc["timings"]  # nothing shown: no pass
        ok = "passed" if kind == "correctness" else "ok"
        sec.doc["status"] = "failed" if failed or empty else ok
    sec.doc["seconds"] = round(time.perf_counter() - start, 2)
    if run.device.type == "cuda":
        sec.doc["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(run.device) / 2**20)
    gc.collect()
    if run.device.type == "cuda":
        torch.cuda.empty_cache()
    run.log(f"{name}: {sec.doc['status']} in {sec.doc['seconds']:.1f} s")
    run.write()


# ----------------------------------------------------------------------------- report


def _fmt(x):
    if x is None:
        return ""
    if isinstance(x, float) and (x == 0 or 1e-3 <= abs(x) < 1e6):
        return f"{x:,.4g}" if abs(x) < 1e3 else f"{x:,.0f}"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def to_markdown(doc):
    meta, sections = doc["meta"], doc["sections"]
    checks = [(n, c) for n, s in sections.items() for c in s["checks"]]
    n_fail = sum(not c["passed"] for _, c in checks)
    n_checks = sum(not c.get("info") for _, c in checks)
    head = [
        f"# GPU check: {meta.get('gpu', meta['device'])}",
        "",
        f"- **Date (UTC):** {meta['date_utc']}; commit `{meta.get('commit', '')}`; "
        f"size `{meta['size']}`; wall time {meta.get('wall_s', 0):.0f} s.",
        f"- **Command:** `{meta['command']}`",
        f"- **Software:** Python {meta['python']}, torch {meta['torch']}"
        + (f" (CUDA {meta['cuda']})" if meta.get("cuda") else "")
        + f", numpy {meta['numpy']}, skgradnorm {meta['skgradnorm']}; "
        f"float32 matmul precision `{meta['float32_matmul_precision']}`, TF32 in matmuls "
        f"{meta['cuda_matmul_allow_tf32']}, in cuDNN {meta['cudnn_allow_tf32']}.",
        f"- **Checks:** {n_checks - n_fail} of {n_checks} passed.",
        "- **Sections:** "
        + ", ".join(
            f"{n} {s['status']} ({s.get('seconds', 0):.0f} s)" for n, s in sections.items()
        ),
        "",
        "## Correctness: the device against the CPU",
        "",
        "| section | check | value | limit | result |",
        "|---|---|---|---|---|",
    ]
    for n, c in checks:
        result = "info" if c.get("info") else ("pass" if c["passed"] else "**FAIL**")
        limit = "" if c.get("info") else f"{c['op']} {c['limit']:g}"
        head.append(f"| {n} | {c['name']} | {_fmt(c['value'])} | {limit} | {result} |")
    head += ["", "## Timings", "", "| section | step | size | time (s) | rate | note |"]
    head.append("|---|---|---|---|---|---|")
    for n, s in sections.items():
        for t in s["timings"]:
            rate = "" if t["rate"] is None else f"{_fmt(t['rate'])} {t['unit']}"
            head.append(
                f"| {n} | {t['step']} | {t['size']} | {t['seconds']:.3f} | {rate} | {t['note']} |"
            )
    notes = [f"- {n}: {x}" for n, s in sections.items() for x in s["notes"]]
    notes += [
        f"- {n}: **{s['status']}**: {s['error']}" for n, s in sections.items() if s.get("error")
    ]
    notes += [f"- {n}: skipped: {s['reason']}" for n, s in sections.items() if s.get("reason")]
    notes += [
        f"- {n}: skipped {x['what']}: {x['reason']}"
        for n, s in sections.items()
        for x in s["skipped"]
    ]
    notes += [
        f"- {n}: peak GPU memory {s['peak_gpu_mib']:,} MiB"
        for n, s in sections.items()
        if "peak_gpu_mib" in s
    ]
    if notes:
        head += ["", "## Notes, errors and memory", "", *notes]
    return "\n".join(head)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", default="gpu-check")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose among {', '.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False; use --device cpu")
    run = Run(args.device, args.size, args.out, args.seed, argv)
    run.write()  # the environment at once: a run that hangs in its first section says where
    run.log(f"gpu_check: device {run.device}, size {args.size}, sections {', '.join(names)}")
    try:
        for name in names:
            run_section(run, name)
    finally:
        run.write()
        run.close()
    statuses = {n: s["status"] for n, s in run.doc["sections"].items()}
    run.log(f"done: {statuses}; wrote {run.out_dir / 'gpu_check.md'}")
    return run.doc


if __name__ == "__main__":
    main()
