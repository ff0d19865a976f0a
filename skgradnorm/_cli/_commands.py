"""The ``cluster`` and ``embed`` commands of the command line (parsing is in ``_parser.py``).

``cluster`` runs named steps: check the arguments, read the inputs, load the model, embed,
select and cluster, write, summarise.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

from ._inputs import (
    CLIError,
    Steps,
    check_out_dir,
    duration,
    load_vocabulary,
    read_embeddings,
    read_labels,
)

# --------------------------------------------------------------------------- cluster


def encoder_from_args(args, *, verbose):
    """The ``CLIPEncoder`` of the model options shared by ``cluster`` and ``embed``."""
    from .._clip._encoder import CLIPEncoder

    return CLIPEncoder(
        model_name=args.model,
        pretrained=args.pretrained,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        verbose=verbose,
    )


def fit_or_tune(clusterer, U, args):
    """Fit ``clusterer`` on ``U``, choosing K and the settings without labels when asked.

    Returns the fitted clusterer, the report's charts ``[(title, svg, note)]`` and the
    sentences that say what was chosen and why.
    """
    from .._cluster._auto_k import describe_k_search
    from .._reporting._charts import criterion_chart_svg
    from ..tuning import tune

    charts, reasons = [], []
    auto = clusterer.n_clusters == "auto"
    if args.tune:
        result = tune(clusterer, U, grid=args.tune_grid)
        clusterer = result.best_estimator_
        if isinstance(clusterer.selector_, str) and result.language_estimator_ is not None:
            # The images alone won: their clusters, named by the best language setting's
            # nouns (the report's only use of the selector).
            clusterer = copy.copy(clusterer)
            clusterer.selector_ = result.language_estimator_.selector_
        if auto:
            k_model = result.auto_k_estimator_
            k_reason = describe_k_search(k_model) + " The settings were then tuned at that K."
            charts.append(("Number of clusters", criterion_chart_svg(estimator=k_model), k_reason))
            reasons.append(k_reason)
        charts.append(("Settings tried", criterion_chart_svg(result), result.reason))
        reasons.append(result.reason)
        return clusterer, charts, reasons
    clusterer.fit(U)
    if auto:
        reason = describe_k_search(clusterer)
        charts.append(("Number of clusters", criterion_chart_svg(estimator=clusterer), reason))
        reasons.append(reason)
    return clusterer, charts, reasons


@dataclass
class _Inputs:
    """What ``cluster`` read and checked before any long step."""

    out_dir: Path
    image_dir: Path | None
    rel_paths: list
    embeddings: object  # the images' embeddings from --embeddings, or None
    true_labels: list | None
    vocabulary: list
    definitions: list | None


def cluster(args) -> int:
    """Cluster a folder of images and write the results and the report."""
    t_start = time.perf_counter()
    inputs = _check_cluster_args(args)
    steps = Steps(4, args.quiet)
    with steps("find images"):  # every input checked before the long steps
        _read_inputs(args, inputs)
    encoder = _load_encoder(args, steps)
    U, E = _embed(args, inputs, encoder, steps)
    clusterer, charts, reasons = _select_and_cluster(args, inputs, U, E, steps)
    result = _write(args, inputs, clusterer, U, charts, reasons, steps)
    _print_summary(args, inputs, clusterer, result, reasons, steps, time.perf_counter() - t_start)
    return 0


def _check_cluster_args(args) -> _Inputs:
    """The checks that need no file read: what to cluster, and where to write."""
    if args.image_dir is None and args.embeddings is None:
        raise CLIError("give IMAGE_DIR (a folder of images) or --embeddings (from a past run).")
    image_dir = Path(args.image_dir) if args.image_dir is not None else None
    if image_dir is not None and not image_dir.is_dir():
        raise CLIError(f"IMAGE_DIR {str(image_dir)!r} is not a folder.")
    out_dir = Path(args.out)
    check_out_dir(out_dir, args.overwrite)
    return _Inputs(out_dir, image_dir, [], None, None, [], None)


def _read_inputs(args, inputs: _Inputs) -> None:
    """Find the images (or read --embeddings), check K and C against them, read the labels
    and the vocabulary."""
    from .._clip._images import IMAGE_EXTENSIONS, find_images

    if args.embeddings is not None:
        inputs.embeddings, inputs.rel_paths, inputs.image_dir = read_embeddings(
            args.embeddings, inputs.image_dir
        )
    else:
        inputs.rel_paths = find_images(inputs.image_dir)
    n = len(inputs.rel_paths)
    if n == 0:
        raise CLIError(
            f"no images found in {str(inputs.image_dir)!r} (searched recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}, any case)."
        )
    if args.head == "distill" and (args.n_clusters == "auto" or args.tune):
        raise CLIError(
            "--head distill needs an integer --n-clusters and no --tune; choose K and the "
            "settings with the default head first (--n-clusters auto --tune)."
        )
    if args.n_clusters != "auto" and args.n_clusters > n:
        raise CLIError(f"--n-clusters {args.n_clusters} is larger than the number of images ({n}).")
    if args.n_centers != "auto" and args.n_centers > n:
        raise CLIError(
            f"--n-centers {args.n_centers} is larger than the number of images ({n}); "
            "use at most that many, or 'auto'."
        )
    if args.labels:
        inputs.true_labels = read_labels(args.labels, inputs.image_dir, inputs.rel_paths)
    inputs.vocabulary, inputs.definitions = load_vocabulary(args.vocabulary)


def _load_encoder(args, steps):
    """The encoder, its weights loaded now: a wrong file or architecture fails here."""
    encoder = encoder_from_args(args, verbose=not args.quiet)
    try:
        with steps("load model"):
            encoder.load_model()
    except Exception as exc:  # a bad file fails in many ways (pickle, zip, size mismatch)
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CLIError(
            f"cannot load the model {args.model!r} with weights {str(args.pretrained)!r}: {message}"
        ) from None
    return encoder


def _embed(args, inputs: _Inputs, encoder, steps):
    """The images' embeddings (kept in OUT_DIR for reruns) and the noun bank's."""
    from .._clip._embedding_files import save_embeddings
    from ..exceptions import PretrainedWeightsError, UnreadableImageError

    user_errors = (UnreadableImageError, PretrainedWeightsError, FileNotFoundError, ValueError)
    U, n = inputs.embeddings, len(inputs.rel_paths)
    try:
        if args.embeddings is not None and Path(args.embeddings).is_file():
            read_embeddings(args.embeddings, inputs.image_dir, model_key=encoder.model_key())
        if U is None:
            with steps(
                "embed images", f"embedding {n} images with {args.model} ({args.pretrained})"
            ):
                U = encoder.transform([str(inputs.image_dir / p) for p in inputs.rel_paths])
            # Kept for reruns with other settings: --embeddings OUT_DIR/embeddings.npy
            inputs.out_dir.mkdir(parents=True, exist_ok=True)
            save_embeddings(
                inputs.out_dir / "embeddings.npy", U, inputs.rel_paths, encoder.model_key()
            )
        vocabulary = inputs.vocabulary
        seconds = encoder.estimate_noun_seconds(vocabulary)
        cost = (
            "all cached"
            if seconds == 0
            else f"about {duration(seconds)} on {encoder.load_model().device}, an estimate "
            "that errs high; cached after this run (a GPU or --vocabulary common is faster)"
        )
        with steps("embed nouns", f"embedding {len(set(vocabulary))} distinct nouns: {cost}"):
            E = encoder.encode_nouns(vocabulary)
    except user_errors as exc:
        raise CLIError(str(exc)) from None
    return U, E


def _make_clusterer(args, inputs: _Inputs, E):
    """The selector on the noun bank ``E`` and the clusterer (k-means or TAC's heads)."""
    from .. import GradNormNounSelector, LanguageAssistedClusterer

    selector = GradNormNounSelector(
        E,
        vocabulary=inputs.vocabulary,
        n_centers=args.n_centers,
        temperature=args.temperature,
        top_k=args.top_k,
        strategy=args.strategy,
        retrieval_temperature=args.retrieval_temperature,
        random_state=args.seed,
        device=args.device,
    )
    if args.head == "distill":
        from .._mutual_distillation import MutualDistillationClusterer

        return MutualDistillationClusterer(
            args.n_clusters,
            selector=selector,
            n_neighbors=min(50, len(inputs.rel_paths) - 1),  # TAC's 50, or all on small folders
            random_state=args.seed,
            device=args.device,
            verbose=not args.quiet,
        )
    return LanguageAssistedClusterer(
        args.n_clusters,
        selector=selector,
        n_init=args.n_init,
        random_state=args.seed,
        device=args.device,
    )


def _select_and_cluster(args, inputs: _Inputs, U, E, steps):
    """Select the nouns and cluster (choosing K and the settings when asked)."""
    with steps(
        "cluster", f"selecting nouns with {args.strategy} and clustering into {args.n_clusters}"
    ):
        clusterer = _make_clusterer(args, inputs, E)
        try:
            return fit_or_tune(clusterer, U, args)
        except ValueError as exc:
            raise CLIError(" ".join(str(exc).split())) from None


def _run_info(args, inputs: _Inputs, clusterer, reasons):
    """``(info, meta_lines)``: the run's settings for clusters.json and the report's header."""
    sel = clusterer.selector_
    n_clusters = int(getattr(clusterer, "n_clusters_", clusterer.n_clusters))
    chosen = sel.get_params()
    image_dir, vocabulary = inputs.image_dir, inputs.vocabulary
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
            "retrieval_temperature": sel.retrieval_temperature_,
            "strategy": args.strategy,
            "n_init": args.n_init,
            "seed": args.seed,
            "vocabulary": str(args.vocabulary),
            "n_vocabulary": len(vocabulary),
            "language_gain": getattr(clusterer, "language_gain_", None),
        },
        "choices": reasons,
    }
    where = image_dir.resolve() if image_dir is not None else args.embeddings
    meta = [
        f"{len(inputs.rel_paths)} images from {where} in {n_clusters} clusters; "
        f"model {args.model} ({args.pretrained}).",
        f"{len(sel.selected_nouns_)} nouns kept by {args.strategy} out of {len(vocabulary)} "
        f"({sel.n_centers_} centres, top {chosen['top_k']} per centre).",
        *reasons,
    ]
    return info, meta


def _write(args, inputs: _Inputs, clusterer, U, charts, reasons, steps):
    """Write the files and the report into OUT_DIR (all or nothing)."""
    from .._reporting._outputs import write_outputs

    info, meta = _run_info(args, inputs, clusterer, reasons)
    image_dir = inputs.image_dir
    where = image_dir.resolve() if image_dir is not None else args.embeddings
    title_name = image_dir.resolve().name if image_dir is not None else Path(where).name
    with steps("write outputs", f"writing the results to {inputs.out_dir}"):
        try:
            return write_outputs(
                inputs.out_dir,
                inputs.rel_paths,
                clusterer,
                U,
                image_root=image_dir,
                true_labels=inputs.true_labels,
                title=f"skgradnorm: {title_name}",
                meta_lines=meta,
                info=info,
                noun_definitions=inputs.definitions,
                map_method=args.map,
                n_jobs=max(1, args.num_workers),
                charts=charts,
            )
        except ValueError as exc:  # OutputFolderError: the folder changed during the run
            raise CLIError(" ".join(str(exc).split())) from None


def _print_summary(args, inputs: _Inputs, clusterer, result, reasons, steps, total):
    n_clusters = int(getattr(clusterer, "n_clusters_", clusterer.n_clusters))
    sel = clusterer.selector_
    print(f"Clustered {len(inputs.rel_paths)} images into {n_clusters} clusters in {total:.1f} s.")
    for reason in reasons:
        print(reason)
    print(f"GradNorm kept {len(sel.selected_nouns_)} of {len(inputs.vocabulary)} nouns.")
    for c in sorted(result["clusters"], key=lambda c: (-c["size"], c["cluster"])):
        print(f"  cluster {c['cluster']:>3}: {c['size']:>6} images  {', '.join(c['nouns'])}")
    if result["metrics"] is not None:
        m = result["metrics"]
        print(f"Against --labels: ACC {m['ACC']:.3f}  NMI {m['NMI']:.3f}  ARI {m['ARI']:.3f}")
    print("Timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in steps.timings.items()))
    print(f"Report: {result['files']['report.html'].resolve()}")


def embed(args) -> int:
    """``skgradnorm embed``: images to a resumable embeddings folder."""
    try:
        from ..distributed import embed_directory
    except ImportError as exc:
        raise CLIError(f"`embed` needs dask ({exc}); pip install 'skgradnorm[dask]'.") from None
    encoder = encoder_from_args(args, verbose=True)
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
