"""The ``skgradnorm`` command line (``python -m skgradnorm``).

- ``skgradnorm cluster IMAGE_DIR --n-clusters K --out OUT_DIR``: cluster a folder of images
  with CLIP and GradNorm and write the assignments, the selected nouns, a JSON summary and
  a self-contained HTML report (see :mod:`skgradnorm._report`).
- ``skgradnorm embed IMAGE_DIR --out EMB_DIR``: images to a resumable embeddings folder
  (on a Dask cluster with ``--scheduler``).
- ``skgradnorm demo``: the method on a synthetic planted world (no weights, CPU, seconds),
  with the same report.

This module parses (its defaults read from the estimators' signatures, without importing
torch); ``_cli_inputs.py`` reads and checks the inputs, ``_cli_commands.py`` runs the
commands and ``_demo.py`` the demo.

Errors the user can fix (no images, unreadable images, K too large, weights that cannot be
loaded, an output folder that already holds results, ...) end with exit status 2 and an
``error:`` message on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import math
import sys
from importlib import resources

from .._version import __version__
from ._commands import cluster, embed, parse_tune_grid
from ._inputs import (  # noqa: F401 (the names tests and the demo import from here)
    IMAGE_EXTENSIONS,
    CLIError,
    check_out_dir,
    find_images,
    load_vocabulary,
    read_labels,
)

# --------------------------------------------------------------------------- defaults


@functools.cache
def _module_ast(module: str) -> ast.Module:
    *folders, name = module.split(".")
    path = resources.files("skgradnorm").joinpath(*folders, f"{name}.py")
    source = path.read_text(encoding="utf-8")
    return ast.parse(source)


def estimator_defaults(module: str, class_name: str) -> dict:
    """The keyword defaults of ``class_name.__init__`` in ``skgradnorm/<module>.py``.

    Read from the source with :mod:`ast`, not by importing the module, so that the parser
    (and ``skgradnorm --help``) does not import torch; the options' defaults are the
    estimators' own, never copies that could drift. Only literal defaults are returned.
    """
    for node in _module_ast(module).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    pairs = list(zip(args.args[::-1], args.defaults[::-1], strict=False))
                    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
                    out = {}
                    for arg, default in pairs:
                        if default is not None:
                            with contextlib.suppress(ValueError):
                                out[arg.arg] = ast.literal_eval(default)
                    return out
    raise LookupError(f"no {class_name}.__init__ in skgradnorm/{module}.py")


def module_constant(module: str, name: str):
    """A literal module-level constant of ``skgradnorm/<module>.py``, read without importing."""
    for node in _module_ast(module).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"no constant {name} in skgradnorm/{module}.py")


# --------------------------------------------------------------------------- parser


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
_non_negative_int = _number(int, minimum=0, strict=False, what="an integer >= 0")
_positive_float = _number(float, minimum=0, strict=True, what="a positive number")


def _int_or_auto(text):
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


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
        nargs="?",
        help="folder of images (searched recursively); optional with --embeddings",
    )
    parser.add_argument(
        "--embeddings",
        metavar="EMB_DIR",
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
        "--out", "-o", required=True, metavar="OUT_DIR", help="output folder (created if needed)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results already in OUT_DIR"
    )
    _add_model_options(parser.add_argument_group("model"), encoder)
    method = parser.add_argument_group("method")
    method.add_argument(
        "--vocabulary",
        metavar="BANK",
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
        type=_positive_float,
        default=selector["retrieval_temperature"],
        help="retrieval softmax temperature tau (default: %(default)s)",
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
        type=int,
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
        type=int,
        default=0,
        help="seed of the world and of every k-means (default: %(default)s)",
    )
    parser.add_argument(
        "--out", "-o", default="skgradnorm-demo", help="output folder (default: %(default)s)"
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
    parser.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images")
    parser.add_argument("--out", "-o", required=True, metavar="OUT_DIR", help="embeddings folder")
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


def _run(args) -> int:
    if args.command == "cluster":
        return cluster(args)
    if args.command == "embed":
        return embed(args)
    from ._demo import demo

    return demo(args)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except CLIError as exc:
        print(f"skgradnorm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skgradnorm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
