"""The ``skgradnorm`` argument parser: ``cluster``, ``embed`` and ``demo``.

Building it imports neither torch nor scikit-learn (``skgradnorm --help`` answers at once);
the options' defaults are the estimators' own (:mod:`._defaults`).
"""

from __future__ import annotations

import argparse
import json
import math

from .._version import __version__
from ._defaults import estimator_defaults, module_constant

__all__ = ["build_parser"]

#: File name extensions that ``cluster`` treats as images (read without importing torch).
IMAGE_EXTENSIONS = module_constant("_clip._images", "IMAGE_EXTENSIONS")


#: ``--tune-grid`` keys: the selector's parameters by their option names.
TUNABLE = {
    "temperature": "selector__temperature",
    "retrieval_temperature": "selector__retrieval_temperature",
    "n_centers": "selector__n_centers",
    "top_k": "selector__top_k",
}


def parse_tune_grid(text):
    """``--tune-grid``: JSON ``{"temperature": [...], ...}`` -> a GridSearchCV-style grid."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise argparse.ArgumentTypeError(
            'expected a non-empty JSON object such as {"temperature": [0.02, 0.05]}'
        )
    grid = {}
    for key, values in raw.items():
        name = TUNABLE.get(key, key if "__" in key else None)
        if name is None:
            raise argparse.ArgumentTypeError(
                f"unknown --tune-grid key {key!r}; use {', '.join(TUNABLE)}"
            )
        if not isinstance(values, list) or not values:
            raise argparse.ArgumentTypeError(f"--tune-grid {key!r} needs a non-empty list")
        check = _GRID_VALUES.get(key)
        for value in values:
            if check is not None and not check[0](value):
                raise argparse.ArgumentTypeError(
                    f"--tune-grid {key!r}: {json.dumps(value)} is not {check[1]}"
                )
        grid[name] = values
    return grid


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: What each --tune-grid key's values must be (checked before anything runs).
_GRID_VALUES = {
    "temperature": (lambda v: _is_number(v) and 0 < v < math.inf, "a positive number"),
    "retrieval_temperature": (
        lambda v: _is_number(v) and 0 < v < math.inf,
        "a positive number",
    ),
    "n_centers": (
        lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        'a positive integer or "auto"',
    ),
    "top_k": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "a positive integer",
    ),
}


def _number(kind, *, minimum, strict, what):
    """An argparse ``type``: parse with ``kind``, require ``> minimum`` (``>=`` if not strict)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        ok = value > minimum if strict else value >= minimum
        if not (ok and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, minimum=1, strict=False, what="a positive integer")
_SEED_MAX = 2**32 - 1  # numpy's legacy seeding (scikit-learn's random_state) takes 0 .. 2**32-1


def _seed(text):
    """``--seed``: an integer in ``[0, 2**32 - 1]``, as scikit-learn's ``random_state``."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= _SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {_SEED_MAX}, got {text!r}")
    return value


def _path(text):
    """A path option: not empty (an empty path would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r} (a NUL byte)")
    return text


_non_negative_int = _number(int, minimum=0, strict=False, what="an integer >= 0")
_positive_float = _number(float, minimum=0, strict=True, what="a positive number")


def _int_or_auto(text):
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


def _float_or_auto(text):
    return "auto" if text.strip().lower() == "auto" else _positive_float(text)


def _add_model_options(model, encoder) -> None:
    """The CLIP model options, shared by ``cluster`` and ``embed``."""
    model.add_argument(
        "--model",
        default=encoder["model_name"],
        help="open_clip architecture (default: %(default)s)",
    )
    model.add_argument(
        "--pretrained",
        default=encoder["pretrained"],
        help="open_clip pretrained tag, or a local weights file or folder (default: "
        "%(default)s; tags are downloaded once by open_clip, which needs network access)",
    )
    model.add_argument(
        "--device", default=None, help="cuda, mps, cpu, ... (default: the best available)"
    )
    model.add_argument(
        "--batch-size",
        type=_positive_int,
        default=encoder["batch_size"],
        help="images per batch (default: %(default)s)",
    )
    model.add_argument(
        "--num-workers",
        type=_non_negative_int,
        default=encoder["num_workers"],
        help="image loading processes (default: %(default)s)",
    )
    model.add_argument(
        "--cache-dir",
        type=_path,
        default=None,
        help="noun-embedding cache folder (default: $SKGRADNORM_CACHE or ~/.cache/skgradnorm)",
    )


def _add_cluster_parser(sub) -> None:
    selector = estimator_defaults("_selector", "GradNormNounSelector")
    clusterer = estimator_defaults("_clusterer", "LanguageAssistedClusterer")
    encoder = estimator_defaults("_clip._encoder", "CLIPEncoder")
    parser = sub.add_parser(
        "cluster",
        help="cluster a folder of images and write a report",
        description=(
            "Cluster the images under IMAGE_DIR (recursively: "
            + ", ".join(IMAGE_EXTENSIONS)
            + ", any case) with CLIP and GradNorm-selected nouns. Writes assignments.csv, "
            "selected_nouns.csv, clusters.json, report.html (one self-contained page) and, "
            "with --labels, metrics.json into OUT_DIR. Defaults are those of the estimators "
            "(CLIPEncoder, GradNormNounSelector, LanguageAssistedClusterer)."
        ),
    )
    parser.add_argument(
        "image_dir",
        metavar="IMAGE_DIR",
        type=_path,
        nargs="?",
        help="folder of images (searched recursively); optional with --embeddings",
    )
    parser.add_argument(
        "--embeddings",
        metavar="EMB_DIR",
        type=_path,
        default=None,
        help="cluster image embeddings made earlier by `skgradnorm embed` instead of "
        "embedding IMAGE_DIR (the same --model and --pretrained embed the nouns)",
    )
    parser.add_argument(
        "--n-clusters",
        "-k",
        type=_int_or_auto,
        required=True,
        metavar="K",
        help="number of clusters, or auto (chosen without labels, by stability, over "
        "2 to min(50, n_images / 10); the report shows the criterion for each K)",
    )
    parser.add_argument(
        "--out",
        "-o",
        required=True,
        type=_path,
        metavar="OUT_DIR",
        help="output folder (created if needed)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results already in OUT_DIR"
    )
    _add_model_options(parser.add_argument_group("model"), encoder)
    method = parser.add_argument_group("method")
    method.add_argument(
        "--vocabulary",
        metavar="BANK",
        type=_path,
        default="paper",
        help="noun bank: a bundled WordNet bank, 'paper' (default: the authors' 146,347 "
        "entries), 'common' (sense-tagged lemmas only: a tenth of the embedding cost, for "
        "coarse categories) or 'unique' (117,798 lemmas), or a file with one noun per line",
    )
    method.add_argument(
        "--n-centers",
        type=_int_or_auto,
        default=selector["n_centers"],
        help="image centres for GradNorm: an int, or auto (default: %(default)s)",
    )
    method.add_argument(
        "--temperature",
        type=_positive_float,
        default=selector["temperature"],
        help="filter temperature T (default: %(default)s)",
    )
    method.add_argument(
        "--top-k",
        type=_positive_int,
        default=selector["top_k"],
        help="nouns kept per centre (default: %(default)s)",
    )
    method.add_argument(
        "--retrieval-temperature",
        type=_float_or_auto,
        default=selector["retrieval_temperature"],
        help="retrieval softmax temperature tau: a number, or auto (0.005 for --strategy tac, "
        "else 0.008; default: %(default)s)",
    )
    method.add_argument(
        "--strategy",
        choices=module_constant("_selector", "STRATEGIES"),
        default=selector["strategy"],
        help="noun filter (default: %(default)s)",
    )
    method.add_argument(
        "--n-init",
        type=_positive_int,
        default=clusterer["n_init"],
        help="restarts of the final k-means (default: %(default)s)",
    )
    method.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="random seed of every k-means (default: %(default)s)",
    )
    method.add_argument(
        "--head",
        choices=("kmeans", "distill"),
        default="kmeans",
        help="kmeans (default): training-free spherical k-means on [image ; text]; distill: "
        "TAC's cluster heads trained by mutual distillation on GradNorm's nouns",
    )
    method.add_argument(
        "--tune",
        action="store_true",
        help="choose T, tau and C without labels: fit a small grid (18 settings by default) "
        "and keep the most stable; the report charts every setting",
    )
    method.add_argument(
        "--tune-grid",
        type=parse_tune_grid,
        default=None,
        metavar="JSON",
        help='the grid for --tune, e.g. \'{"temperature": [0.02, 0.05], "n_centers": [40, 80]}\' '
        "(keys: temperature, retrieval_temperature, n_centers, top_k)",
    )
    output = parser.add_argument_group("evaluation and output")
    output.add_argument(
        "--map",
        choices=("pca", "tsne", "auto"),
        default="pca",
        help="the report's 2-D map of the collection (auto: t-SNE up to 1,000 images, else "
        "PCA; default: %(default)s)",
    )
    output.add_argument(
        "--labels",
        metavar="CSV",
        type=_path,
        default=None,
        help="known classes as 'path,label' rows (paths relative to IMAGE_DIR or absolute): "
        "prints and writes ACC, NMI, ARI (metrics.json)",
    )
    output.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bars or step messages"
    )
    parser.set_defaults(command="cluster")


def _add_demo_parser(sub) -> None:
    parser = sub.add_parser(
        "demo",
        help="run GradNorm on a synthetic planted world (no weights, CPU, seconds)",
        description=(
            "GradNorm on a synthetic planted world. Prints what it selects and the accuracy "
            "with and without language, and writes the same files as 'cluster' (with a report "
            "whose tiles stand for the images) into --out. The demo replaces its own earlier "
            "output there; other results are kept unless --overwrite is given."
        ),
    )
    parser.add_argument(
        "--n-samples",
        type=_positive_int,
        default=600,
        help="images in the planted world (default: %(default)s)",
    )
    parser.add_argument(
        "--n-classes",
        type=_positive_int,
        default=5,
        help="classes in the planted world (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the world and of every k-means (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        "-o",
        type=_path,
        default="skgradnorm-demo",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results of other runs in --out"
    )
    parser.set_defaults(command="demo")


def _add_embed_parser(sub) -> None:
    encoder = estimator_defaults("_clip._encoder", "CLIPEncoder")
    parser = sub.add_parser(
        "embed",
        help="embed a folder of images into a resumable embeddings folder (Dask)",
        description=(
            "Embed the images under IMAGE_DIR (found as 'cluster' finds them) into OUT_DIR, "
            "in partitions written as they finish, on a Dask cluster (--scheduler) or in this "
            "process. A rerun resumes from the finished partitions. Cluster the result with "
            "`skgradnorm cluster --embeddings OUT_DIR`. Needs skgradnorm[dask]."
        ),
    )
    parser.add_argument("image_dir", metavar="IMAGE_DIR", type=_path, help="folder of images")
    parser.add_argument(
        "--out", "-o", required=True, type=_path, metavar="OUT_DIR", help="embeddings folder"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address (tcp://host:8786) or scheduler file (default: run here)",
    )
    parser.add_argument(
        "--partition-size",
        type=_positive_int,
        default=1024,
        help="images per partition, the unit of work and of resumption (default: %(default)s)",
    )
    parser.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming OUT_DIR"
    )
    _add_model_options(parser.add_argument_group("model"), encoder)
    parser.set_defaults(command="embed")


def build_parser() -> argparse.ArgumentParser:
    """The ``skgradnorm`` argument parser (building it imports neither torch nor sklearn)."""
    parser = argparse.ArgumentParser(
        prog="skgradnorm",
        description="Language-assisted image clustering with GradNorm (ICCV 2025).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_cluster_parser(sub)
    _add_embed_parser(sub)
    _add_demo_parser(sub)
    return parser
