"""Reproduce the GradNorm paper's training-free results (arXiv:2510.16335), row by row.

Every dataset and backbone the authors' scripts list is a row of ONE table
(``benchmarks/reproduce/settings.py``: dataset, backbone, K, C, T, top_k, tau and the
reported ACC/NMI/ARI). For each row: embed the noun bank (WordNet, the authors' 146,347
entries by default) and the images with the row's CLIP backbone (open_clip, OpenAI's
weights), fit the image centres and the GradNorm noun filter on the TRAINING split,
cluster the TEST split's ``[u ; t]`` with spherical k-means, and print the obtained
ACC/NMI/ARI beside the reported ones, with the image-only k-means baseline.

Commands (from the repository root, on a machine with network access and a GPU)::

    # one row, or several: --datasets and --backbones take comma-separated lists
    python benchmarks/reproduce_paper.py --datasets cifar10 --backbones vit-b-32 \\
        --device cuda --data-root ~/data --out results/cifar10.json
    # the whole table (28 rows; rows whose data is missing are reported as skipped)
    python benchmarks/reproduce_paper.py --all --device cuda --data-root ~/data \\
        --out results/all.json            # also writes results/all.md
    # local images: DIR/train/<class>/* and DIR/test/<class>/*
    python benchmarks/reproduce_paper.py --image-folder DIR --pretrained /path/to/weights.pt

``--protocol paper`` (the default) is the authors' k-means: 300 iterations, 20 restarts,
seed 0, for the centres and the final clustering, on at most 256 points per centroid as
faiss does; ``--protocol package`` is faster. ``--n-clusters``, ``--n-centers``,
``--temperature``, ``--top-k`` and ``--retrieval-temperature`` override a row's settings
(its reported numbers are then not shown). Where each dataset is looked for under
``--data-root`` is listed in ``benchmarks/reproduce/loaders.py`` and in the docs
(``docs/reproducing.rst``), with the exact command per row. torchvision's datasets are
downloaded into ``--data-root`` when missing (the script says so first; ``--no-download``
forbids it); ImageNet, UCF101 and Cars must be put there by hand.

What was run here: the development machines have no network access and no GPU, so no
dataset or CLIP weights could be fetched and no paper number is claimed. Every layout runs
end to end offline on generated images with a tiny random-weight model
(``tests/test_reproduce_paper.py``): that checks the pipeline, not the paper's accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from benchmarks.reproduce.cifar import (  # noqa: E402, F401 (re-exported)
    CIFAR100_COARSE_NAMES,
    CIFAR100_FINE_NAMES,
    CIFAR100_FINE_TO_COARSE,
    check_cifar20_mapping,
    cifar100_to_cifar20,
)
from benchmarks.reproduce.loaders import (  # noqa: E402
    FOLDER_DATASETS,
    DatasetUnavailableError,
    load_dataset,
    load_image_folder,
    torchvision_datasets,
)
from benchmarks.reproduce.runner import (  # noqa: E402
    cluster_dataset,
    embed_images,
    embed_nouns,
    format_markdown,
    format_table,
    log,
)
from benchmarks.reproduce.settings import (  # noqa: E402
    BACKBONES,
    DATASET_NAMES,
    PROTOCOLS,
    SETTINGS,
    backbone_key,
    dataset_key,
    find_setting,
)

__all__ = ["build_parser", "format_markdown", "format_table", "main", "torchvision_datasets"]

_OVERRIDES = ("n_clusters", "n_centers", "temperature", "top_k", "retrieval_temperature")


class UsageError(ValueError):
    """A bad combination of options; the message is one line."""


def default_data_root() -> Path:
    env = os.environ.get("SKGRADNORM_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "skgradnorm" / "datasets"


def _key_list(parse):
    def convert(text):
        try:
            return list(dict.fromkeys(parse(k) for k in text.split(",") if k.strip()))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reproduce_paper.py",
        description="GradNorm (training-free) on the paper's datasets and backbones, or on "
        "a local image folder: centres on the train split, clustering scored on the test split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("what to run")
    data.add_argument(
        "--datasets",
        type=_key_list(dataset_key),
        default=["cifar10", "cifar20", "stl10"],
        metavar="LIST",
        help=f"datasets, comma separated, among {','.join(DATASET_NAMES)}",
    )
    data.add_argument(
        "--backbones",
        type=_key_list(backbone_key),
        default=["vit-b-32"],
        metavar="LIST",
        help=f"backbones, comma separated, among {','.join(BACKBONES)}",
    )
    data.add_argument("--all", action="store_true", help="every row of the settings table")
    data.add_argument(
        "--image-folder",
        type=Path,
        default=None,
        metavar="DIR",
        help="run on DIR/train/<class>/* and DIR/test/<class>/* instead",
    )
    data.add_argument(
        "--data-root",
        "--data-dir",
        dest="data_root",
        type=Path,
        default=None,
        metavar="DIR",
        help="where datasets are read (and torchvision's downloaded); None: "
        "$SKGRADNORM_DATA, else ~/.cache/skgradnorm/datasets",
    )
    data.add_argument("--no-download", action="store_true", help="never let torchvision download")
    data.add_argument(
        "--vocabulary",
        default="paper",
        metavar="BANK",
        help="noun bank: 'paper' (146,347 WordNet entries), 'unique' (117,798) or a file, "
        "one noun a line",
    )
    data.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="paper",
        help="k-means protocol: the authors' (300 iterations, 20 restarts, seed 0) or faster",
    )
    model = p.add_argument_group("model")
    model.add_argument("--model", default=None, help="open_clip architecture; None: the row's")
    model.add_argument(
        "--pretrained",
        default=None,
        help="open_clip pretrained tag or local weights file; None: the row's ('openai')",
    )
    model.add_argument("--device", default=None, help="cuda, cpu, mps; None: the best available")
    model.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None)
    model.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    model.add_argument("--num-workers", type=int, default=0, help="image decoding workers")
    model.add_argument("--cache-dir", default=None, metavar="DIR", help="noun-embedding cache")
    method = p.add_argument_group("method", "Override the row's settings (None: the table's).")
    method.add_argument("--n-clusters", type=int, default=None, help="K")
    method.add_argument("--n-centers", type=int, default=None, help="C, image centres")
    method.add_argument("--temperature", type=float, default=None, help="T, filter temperature")
    method.add_argument("--top-k", type=int, default=None, help="nouns kept per centre")
    method.add_argument("--retrieval-temperature", type=float, default=None, help="tau")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, metavar="FILE", help="results as JSON")
    out.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="FILE",
        help="results as Markdown; None: --out with the suffix .md",
    )
    out.add_argument("--verbose", action="store_true", help="progress bars while embedding")
    return p


# --------------------------------------------------------------------------- planning


def _row_settings(dataset, backbone, args):
    """(settings, reported or None, overridden names) of one row; one-line errors."""
    given = {name: getattr(args, name) for name in _OVERRIDES}
    try:
        row = find_setting(dataset, backbone)
    except LookupError:
        missing = [n for n in _OVERRIDES[1:] if given[n] is None]
        if missing:
            raise
        K = next(r.n_clusters for r in SETTINGS if r.dataset == dataset)
        return dict(given, n_clusters=given["n_clusters"] or K), None, list(_OVERRIDES)
    settings = row.method_settings
    overridden = [n for n, v in given.items() if v is not None and v != settings[n]]
    settings.update({n: v for n, v in given.items() if v is not None})
    if settings["n_centers"] is None:
        raise UsageError(
            f"the authors' scripts give no C for {DATASET_NAMES[dataset]} with "
            f"{BACKBONES[backbone][0]}; pass --n-centers."
        )
    return settings, (None if overridden else row.reported), overridden


def plan(args) -> tuple[list, list]:
    """The rows to run, as dicts, and the rows skipped (--all only), before loading data."""
    if args.image_folder is not None:
        return [{"dataset": None, "backbone": args.backbones[0]}], []
    pairs = (
        [(r.dataset, r.backbone) for r in SETTINGS]
        if args.all
        else [(d, b) for b in args.backbones for d in args.datasets]
    )
    jobs, skipped = [], []
    for dataset, backbone in pairs:
        try:
            settings, reported, overridden = _row_settings(dataset, backbone, args)
        except (LookupError, UsageError) as exc:
            if not args.all:
                raise UsageError(str(exc)) from None
            skipped.append(_skip(dataset, backbone, exc))
            continue
        jobs.append(
            {
                "dataset": dataset,
                "backbone": backbone,
                "settings": settings,
                "reported": reported,
                "overridden": overridden,
            }
        )
    return jobs, skipped


def _skip(dataset, backbone, exc):
    return {
        "dataset": DATASET_NAMES[dataset],
        "backbone": BACKBONES[backbone][0],
        "reason": " ".join(str(exc).split()),
    }


def load_vocabulary(spec):
    """(nouns, definitions or None) of 'paper', 'unique' or a file (one noun a line)."""
    from skgradnorm.vocabulary import wordnet_definitions, wordnet_nouns

    if spec in ("paper", "unique"):
        return wordnet_nouns(spec), wordnet_definitions(spec)
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"--vocabulary {spec}: expected 'paper', 'unique' or a noun file.")
    nouns = [n.strip() for n in path.read_text(encoding="utf-8").splitlines()]
    nouns = list(dict.fromkeys(n for n in nouns if n and not n.startswith("#")))
    if not nouns:
        raise UsageError(f"--vocabulary {spec}: the file lists no nouns (one noun a line).")
    return nouns, None


# --------------------------------------------------------------------------- running


def _load_all(jobs, skipped, args, data_root):
    """Load every dataset the jobs need (before any model), dropping failed rows (--all)."""
    loaded, failed = {}, {}
    for job in jobs:
        key = job["dataset"]
        if key is None:
            loaded[None] = load_image_folder(args.image_folder)
        if key is None or key in loaded or key in failed:
            continue
        if key in FOLDER_DATASETS:
            log(f"[{DATASET_NAMES[key]}] reading the folder layout under {data_root}")
        elif args.no_download:
            log(f"[{DATASET_NAMES[key]}] reading {data_root} (--no-download: nothing is fetched)")
        else:
            log(f"[{DATASET_NAMES[key]}] reading {data_root}; torchvision downloads it there")
        try:
            loaded[key] = load_dataset(key, data_root, download=not args.no_download)
        except DatasetUnavailableError as exc:
            if not args.all:
                raise
            failed[key] = exc
    kept = []
    for job in jobs:
        if job["dataset"] in failed:
            skipped.append(_skip(job["dataset"], job["backbone"], failed[job["dataset"]]))
        else:
            kept.append(job)
    return loaded, kept


def _encoder(backbone, args):
    from skgradnorm._clip._encoder import CLIPEncoder

    _, model, pretrained = BACKBONES[backbone]
    return CLIPEncoder(
        model_name=args.model or model,
        pretrained=args.pretrained or pretrained,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        verbose=args.verbose,
    )


def run(args) -> dict:
    """Plan, load, embed, cluster; return the JSON-ready report (raises on bad input)."""
    jobs, skipped = plan(args)
    nouns, definitions = load_vocabulary(args.vocabulary)
    data_root = args.data_root or default_data_root()
    loaded, jobs = _load_all(jobs, skipped, args, data_root)

    results, runs, n_distinct = [], [], len(set(nouns))
    for backbone in dict.fromkeys(job["backbone"] for job in jobs):
        encoder = _encoder(backbone, args)
        t0 = time.perf_counter()
        log(f"[{backbone}] embedding {len(nouns)} nouns (cached after the first run)")
        E, n_distinct = embed_nouns(encoder, nouns)
        noun_seconds = time.perf_counter() - t0
        for job in (j for j in jobs if j["backbone"] == backbone):
            results_, run_ = _run_job(job, loaded, encoder, E, nouns, definitions, args)
            run_["noun_seconds"] = noun_seconds
            results.extend(results_)
            runs.append(run_)

    import skgradnorm
    from skgradnorm._utils._torch import resolve_device

    return {
        "protocol": args.protocol,
        "kmeans": PROTOCOLS[args.protocol],
        "vocabulary": args.vocabulary,
        "n_nouns": len(nouns),
        "n_distinct_nouns": n_distinct,
        "device": str(resolve_device(args.device)),
        "precision": args.precision,
        "skgradnorm_version": skgradnorm.__version__,
        "runs": runs,
        "results": results,
        "skipped": skipped,
        "note": "scores are fractions (0.911 = 91.1 %); 'reported' holds the paper's "
        "numbers (GradNorm rows with the table's settings), null where it gives none.",
    }


def _run_job(job, loaded, encoder, E, nouns, definitions, args):
    key, backbone = job["dataset"], job["backbone"]
    train, test = loaded[key]
    if key is None:  # image folder: the selector's defaults unless overridden
        settings = {
            "n_clusters": len(np.unique(test.labels)),
            "n_centers": "auto",
            "temperature": 0.05,
            "top_k": 5,
            "retrieval_temperature": 0.008,
        }
        settings.update({n: getattr(args, n) for n in _OVERRIDES if getattr(args, n) is not None})
        name, reported = f"folder:{args.image_folder.name}", None
    else:
        settings, name, reported = job["settings"], DATASET_NAMES[key], job["reported"]
    t0 = time.perf_counter()
    log(f"[{name} / {backbone}] embedding {len(train)} train and {len(test)} test images")
    U_train, U_test = embed_images(encoder, train.images), embed_images(encoder, test.images)
    embed_seconds = time.perf_counter() - t0
    rows = cluster_dataset(
        U_train, U_test, test.labels, E, nouns, settings, args.protocol, args.device
    )
    for row in rows:
        row.update(dataset=name, backbone=BACKBONES[backbone][0])
        row["reported"] = reported if row["method"] == "GradNorm" else None
        if "selected_indices" in row and definitions is not None:
            row["selected_definitions"] = [definitions[i] for i in row["selected_indices"]]
    gn, base = rows
    log(
        f"[{name} / {backbone}] GradNorm ACC {gn['acc']:.3f} (image-only {base['acc']:.3f}); "
        f"{len(gn['selected_nouns'])} nouns kept, e.g. {', '.join(gn['selected_nouns'][:6])}"
    )
    run_ = {
        "dataset": name,
        "key": key,
        "backbone": BACKBONES[backbone][0],
        "model": args.model or BACKBONES[backbone][1],
        "pretrained": str(args.pretrained or BACKBONES[backbone][2]),
        "n_train": len(train),
        "n_test": len(test),
        "class_names": list(test.class_names),
        "settings": settings,
        "overridden": job.get("overridden", []),
        "embed_seconds": embed_seconds,
        "y_true": test.labels.astype(int).tolist(),
    }
    return rows, run_


def main(argv=None) -> int:
    """Command-line entry point: 0 ok, 2 bad input or data/weights problem (one line)."""
    args = build_parser().parse_args(argv)
    from skgradnorm.exceptions import PretrainedWeightsError, UnreadableImageError

    try:
        report = run(args)
    except (UsageError, DatasetUnavailableError, PretrainedWeightsError) as exc:
        log(f"error: {exc}")
        return 2
    except UnreadableImageError as exc:
        log(f"error: {exc}")
        return 2
    print(format_table(report["results"]))
    for s in report["skipped"]:
        log(f"skipped {s['dataset']} / {s['backbone']}: {s['reason']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        log(f"results written to {args.out}")
    markdown = args.markdown or (args.out.with_suffix(".md") if args.out else None)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(format_markdown(report), encoding="utf-8")
        log(f"Markdown written to {markdown}")
    return 2 if report["skipped"] else 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
