"""The ``skgradnorm`` command line (``python -m skgradnorm``).

- ``skgradnorm cluster IMAGE_DIR --n-clusters K --out OUT_DIR``: cluster a folder of images
  with CLIP and GradNorm and write the assignments, the selected nouns, a JSON summary and
  a self-contained HTML report (see :mod:`skgradnorm._report`).
- ``skgradnorm demo``: the method on a synthetic planted world (no download, CPU, seconds),
  with the same report.

Errors the user can fix (no images, unreadable images, K too large, weights that cannot be
loaded, an output folder that already holds results, ...) end with exit status 2 and an
``error:`` message on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import functools
import json
import math
import os
import sys
import time
from importlib import resources
from pathlib import Path

from ._version import __version__

#: File name extensions (lower case) that ``skgradnorm cluster`` treats as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class CLIError(Exception):
    """An error the user can fix: reported as ``error: <message>`` with exit status 2."""


# --------------------------------------------------------------------------- helpers


def find_images(image_dir) -> list[str]:
    """Image files under ``image_dir``, recursively, as sorted POSIX paths relative to it.

    A file is an image if its extension is in :data:`IMAGE_EXTENSIONS` (any case). Hidden
    files and folders (names starting with ".") are skipped. Symbolic links to folders are
    followed (a link back to a folder already visited is not, so cycles end).
    """
    root = Path(image_dir)
    found = []
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link cycle, or two links to one folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found)


def read_vocabulary(path) -> list[str]:
    """Nouns from a text file, one per line (blank lines skipped, duplicates dropped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read the vocabulary file {str(path)!r}: {exc}") from None
    nouns = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not nouns:
        raise CLIError(f"the vocabulary file {str(path)!r} holds no nouns (one noun per line).")
    return nouns


#: The bundled noun banks, by the names ``--vocabulary`` accepts (see skgradnorm.vocabulary).
BUNDLED_VOCABULARIES = ("paper", "common", "unique")


def load_vocabulary(choice):
    """``(nouns, definitions or None)`` for ``--vocabulary``: a bundled bank or a file.

    A bundled bank's name wins unless a file of that name exists in the current folder.
    """
    if choice is None:
        choice = "paper"
    if choice in BUNDLED_VOCABULARIES and not Path(choice).is_file():
        from .vocabulary import wordnet_definitions, wordnet_nouns

        return wordnet_nouns(choice), wordnet_definitions(choice)
    return read_vocabulary(choice), None


def read_labels(labels_csv, image_dir, rel_paths) -> list[str]:
    """The label of each image, from a CSV file of ``path,label`` rows.

    A header row (first cell ``path``) is optional. Paths may be relative to
    ``image_dir``, relative to the current folder, or absolute. Every image must have a
    label; rows for other files are ignored.
    """
    try:
        with open(labels_csv, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read the labels file {str(labels_csv)!r}: {exc}") from None
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    root = Path(image_dir).resolve()
    by_path = {}
    for line, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise CLIError(
                f"{labels_csv}: row {line} {row!r} has no label; each row must be 'path,label'."
            )
        path, label = row[0].strip(), row[1].strip()
        p = Path(path).expanduser()
        candidates = [p.resolve()] if p.is_absolute() else [(root / p).resolve(), p.resolve()]
        for c in candidates:
            by_path[c] = label
    labels, missing = [], []
    for rel in rel_paths:
        label = by_path.get((root / rel).resolve())
        if label is None:
            missing.append(rel)
        labels.append(label)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f", ... ({len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise CLIError(
            f"{len(missing)} of {len(rel_paths)} images have no label in {labels_csv}: {shown}. "
            "Give every image a 'path,label' row (paths relative to IMAGE_DIR or absolute)."
        )
    return labels


def read_embeddings(path, image_dir):
    """``(U, names, image_root)`` from ``--embeddings``: a ``skgradnorm embed`` folder.

    The names are the image paths relative to ``image_root`` (IMAGE_DIR when given, else
    the folder the embeddings were made from), so that the report can show the images.
    """
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise CLIError(
            f"--embeddings {str(path)!r} is not an embeddings folder (no manifest.json); make "
            "one with `skgradnorm embed IMAGE_DIR --out FOLDER`."
        )
    try:
        from .distributed import load_embeddings
    except ImportError as exc:
        raise CLIError(
            f"reading an embeddings folder needs dask ({exc}); pip install 'skgradnorm[dask]'."
        ) from None
    import numpy as np

    try:
        U, paths = load_embeddings(path)
        U = np.asarray(U.compute())
    except (OSError, ValueError, RuntimeError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    root = Path(image_dir).resolve() if image_dir is not None else None
    if root is None:
        common = os.path.commonpath(paths) if paths else "."
        root = Path(common if os.path.isdir(common) else os.path.dirname(common))
    names = [os.path.relpath(p, root) for p in paths]
    return U, [Path(n).as_posix() for n in names], root


class _Steps:
    """Prints ``[i/n] what`` to stderr (unless quiet) and records each step's duration."""

    def __init__(self, n, quiet):
        self.n, self.quiet, self.i = n, quiet, 0
        self.timings = {}

    @contextlib.contextmanager
    def __call__(self, name, message=None):
        if message is not None:
            self.i += 1
            if not self.quiet:
                print(f"[{self.i}/{self.n}] {message}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - t0


def check_out_dir(out_dir: Path, overwrite: bool, *, own_source=None) -> None:
    """Refuse an unusable output folder before any compute (one line, exit 2).

    See :func:`skgradnorm._outputs.check_output_dir`: creatable and writable, not inside a
    file, no links planted where outputs go, and no earlier results unless ``overwrite``
    (or unless they are ``own_source``'s, for the demo).
    """
    from ._outputs import check_output_dir

    try:
        check_output_dir(out_dir, overwrite=overwrite, own_source=own_source)
    except ValueError as exc:  # OutputFolderError
        raise CLIError(" ".join(str(exc).split())) from None


# --------------------------------------------------------------------------- cluster


#: ``--tune-grid`` keys: the selector's parameters by their option names.
_TUNABLE = {
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
        name = _TUNABLE.get(key, key if "__" in key else None)
        if name is None:
            raise argparse.ArgumentTypeError(
                f"unknown --tune-grid key {key!r}; use {', '.join(_TUNABLE)}"
            )
        if not isinstance(values, list) or not values:
            raise argparse.ArgumentTypeError(f"--tune-grid {key!r} needs a non-empty list")
        grid[name] = values
    return grid


def fit_or_tune(clusterer, U, args):
    """Fit ``clusterer`` on ``U``, choosing K and the settings without labels when asked.

    Returns the fitted clusterer, the report's charts ``[(title, svg, note)]`` and the
    sentences that say what was chosen and why.
    """
    from .tuning import criterion_chart_svg, tune

    charts, reasons = [], []
    auto = clusterer.n_clusters == "auto"
    if args.tune:
        result = tune(clusterer, U, grid=args.tune_grid)
        clusterer = result.best_estimator_
        if auto:
            k_model = result.auto_k_estimator_
            k_reason = (
                f"K = {k_model.n_clusters_} chosen without labels first (the highest "
                "stability, the largest K among ties), then the settings at that K."
            )
            charts.append(("Number of clusters", criterion_chart_svg(estimator=k_model), k_reason))
            reasons.append(k_reason)
        charts.append(("Settings tried", criterion_chart_svg(result), result.reason))
        reasons.append(result.reason)
        return clusterer, charts, reasons
    clusterer.fit(U)
    if auto:
        best = max(clusterer.n_clusters_scores_)
        reason = (
            f"K = {clusterer.n_clusters_} chosen without labels: the highest stability "
            f"({best:.3f}) over K in {[int(k) for k in clusterer.n_clusters_range_]}, "
            "the largest K among ties."
        )
        charts.append(("Number of clusters", criterion_chart_svg(estimator=clusterer), reason))
        reasons.append(reason)
    return clusterer, charts, reasons


def cluster(args) -> int:
    """Cluster a folder of images and write the results and the report."""
    from . import GradNormNounSelector, LanguageAssistedClusterer
    from ._encoder import CLIPEncoder
    from ._outputs import write_outputs
    from .exceptions import PretrainedWeightsError, UnreadableImageError

    t_start = time.perf_counter()
    out_dir = Path(args.out)
    if args.image_dir is None and args.embeddings is None:
        raise CLIError("give IMAGE_DIR (a folder of images) or --embeddings (from a past run).")
    image_dir = Path(args.image_dir) if args.image_dir is not None else None
    if image_dir is not None and not image_dir.is_dir():
        raise CLIError(f"IMAGE_DIR {str(image_dir)!r} is not a folder.")
    check_out_dir(out_dir, args.overwrite)
    steps = _Steps(4, args.quiet)

    # Check every input before the long steps (and before any progress output).
    with steps("find images"):
        U = None
        if args.embeddings is not None:
            U, rel_paths, image_dir = read_embeddings(args.embeddings, image_dir)
        else:
            rel_paths = find_images(image_dir)
        n = len(rel_paths)
        if n == 0:
            raise CLIError(
                f"no images found in {str(image_dir)!r} (searched recursively for "
                f"{', '.join(IMAGE_EXTENSIONS)}, any case)."
            )
        if args.n_clusters != "auto" and args.n_clusters > n:
            raise CLIError(
                f"--n-clusters {args.n_clusters} is larger than the number of images ({n})."
            )
        if args.n_centers != "auto" and args.n_centers > n:
            raise CLIError(
                f"--n-centers {args.n_centers} is larger than the number of images ({n}); "
                "use at most that many, or 'auto'."
            )
        true_labels = read_labels(args.labels, image_dir, rel_paths) if args.labels else None
        vocabulary, definitions = load_vocabulary(args.vocabulary)

    encoder = CLIPEncoder(
        model_name=args.model,
        pretrained=args.pretrained,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        verbose=not args.quiet,
    )
    user_errors = (UnreadableImageError, PretrainedWeightsError, FileNotFoundError, ValueError)
    try:
        with steps("load model"):
            # Load the weights before any long step: a wrong file or architecture fails now.
            encoder._get_bundle()
    except Exception as exc:  # a bad file fails in many ways (pickle, zip, size mismatch)
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CLIError(
            f"cannot load the model {args.model!r} with weights {str(args.pretrained)!r}: {message}"
        ) from None
    try:
        if U is None:
            with steps(
                "embed images", f"embedding {n} images with {args.model} ({args.pretrained})"
            ):
                U = encoder.transform([str(image_dir / p) for p in rel_paths])
        with steps(
            "embed nouns", f"embedding {len(vocabulary)} nouns (cached after the first run)"
        ):
            E = encoder.encode_nouns(vocabulary)
    except user_errors as exc:
        raise CLIError(str(exc)) from None

    with steps(
        "cluster", f"selecting nouns with {args.strategy} and clustering into {args.n_clusters}"
    ):
        charts = []
        selector = GradNormNounSelector(
            E,
            vocabulary=vocabulary,
            n_centers=args.n_centers,
            temperature=args.temperature,
            top_k=args.top_k,
            strategy=args.strategy,
            retrieval_temperature=args.retrieval_temperature,
            random_state=args.seed,
            device=args.device,
        )
        clusterer = LanguageAssistedClusterer(
            args.n_clusters,
            selector=selector,
            n_init=args.n_init,
            random_state=args.seed,
            device=args.device,
        )
        try:
            clusterer, charts, reasons = fit_or_tune(clusterer, U, args)
        except ValueError as exc:
            raise CLIError(" ".join(str(exc).split())) from None

    sel = clusterer.selector_
    n_clusters = int(getattr(clusterer, "n_clusters_", clusterer.n_clusters))
    with steps("write outputs", f"writing the results to {out_dir}"):
        chosen = sel.get_params()
        info = {
            "source": "cluster",
            "image_dir": str(image_dir.resolve()) if image_dir is not None else None,
            "model": args.model,
            "pretrained": str(args.pretrained),
            "parameters": {
                "n_clusters": n_clusters,
                "n_centers": sel.n_centers_,
                "temperature": chosen["temperature"],
                "top_k": chosen["top_k"],
                "retrieval_temperature": chosen["retrieval_temperature"],
                "strategy": args.strategy,
                "n_init": args.n_init,
                "seed": args.seed,
                "vocabulary": str(args.vocabulary),
                "n_vocabulary": len(vocabulary),
            },
            "choices": reasons,
        }
        where = image_dir.resolve() if image_dir is not None else args.embeddings
        meta = [
            f"{n} images from {where} in {n_clusters} clusters; "
            f"model {args.model} ({args.pretrained}).",
            f"{len(sel.selected_nouns_)} nouns kept by {args.strategy} out of {len(vocabulary)} "
            f"({sel.n_centers_} centres, top {chosen['top_k']} per centre).",
            *reasons,
        ]
        title_name = image_dir.resolve().name if image_dir is not None else Path(where).name
        try:
            result = write_outputs(
                out_dir,
                rel_paths,
                clusterer,
                U,
                image_root=image_dir,
                true_labels=true_labels,
                title=f"skgradnorm: {title_name}",
                meta_lines=meta,
                info=info,
                noun_definitions=definitions,
                map_method=args.map,
                n_jobs=max(1, args.num_workers),
                charts=charts,
            )
        except ValueError as exc:  # OutputFolderError: the folder changed during the run
            raise CLIError(" ".join(str(exc).split())) from None

    total = time.perf_counter() - t_start
    print(f"Clustered {n} images into {n_clusters} clusters in {total:.1f} s.")
    for reason in reasons:
        print(reason)
    print(f"GradNorm kept {len(sel.selected_nouns_)} of {len(vocabulary)} nouns.")
    for c in sorted(result["clusters"], key=lambda c: (-c["size"], c["cluster"])):
        print(f"  cluster {c['cluster']:>3}: {c['size']:>6} images  {', '.join(c['nouns'])}")
    if result["metrics"] is not None:
        m = result["metrics"]
        print(f"Against --labels: ACC {m['ACC']:.3f}  NMI {m['NMI']:.3f}  ARI {m['ARI']:.3f}")
    print("Timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in steps.timings.items()))
    print(f"Report: {result['files']['report.html'].resolve()}")
    return 0


# --------------------------------------------------------------------------- defaults


@functools.cache
def _module_ast(module: str) -> ast.Module:
    source = resources.files("skgradnorm").joinpath(f"{module}.py").read_text(encoding="utf-8")
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
    encoder = estimator_defaults("_encoder", "CLIPEncoder")
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
    encoder = estimator_defaults("_encoder", "CLIPEncoder")
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


def embed(args) -> int:
    """``skgradnorm embed``: images to a resumable embeddings folder."""
    try:
        from .distributed import embed_directory
    except ImportError as exc:
        raise CLIError(f"`embed` needs dask ({exc}); pip install 'skgradnorm[dask]'.") from None
    from ._encoder import CLIPEncoder

    encoder = CLIPEncoder(
        model_name=args.model,
        pretrained=args.pretrained,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
    )
    t0 = time.perf_counter()
    try:
        U, paths = embed_directory(
            args.image_dir,
            args.out,
            encoder=encoder,
            scheduler=args.scheduler,
            partition_size=args.partition_size,
            resume=not args.no_resume,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    print(
        f"Embedded {len(paths)} images ({U.shape[1]} dimensions) into {args.out} in "
        f"{time.perf_counter() - t0:.1f} s. Cluster them with: skgradnorm cluster "
        f"--embeddings {args.out} -k K -o OUT_DIR"
    )
    return 0


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
