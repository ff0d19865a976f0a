"""The ``cluster`` and ``embed`` commands of the command line (parsing is in ``_cli.py``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ._inputs import (
    IMAGE_EXTENSIONS,
    CLIError,
    _duration,
    _Steps,
    check_out_dir,
    find_images,
    load_vocabulary,
    read_embeddings,
    read_labels,
)

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
    from .._reporting._charts import criterion_chart_svg
    from ..tuning import tune

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
    from .. import GradNormNounSelector, LanguageAssistedClusterer
    from .._reporting._outputs import write_outputs
    from ..exceptions import PretrainedWeightsError, UnreadableImageError

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
        if args.head == "distill" and (args.n_clusters == "auto" or args.tune):
            raise CLIError(
                "--head distill needs an integer --n-clusters and no --tune; choose K and the "
                "settings with the default head first (--n-clusters auto --tune)."
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

    encoder = encoder_from_args(args, verbose=not args.quiet)
    user_errors = (UnreadableImageError, PretrainedWeightsError, FileNotFoundError, ValueError)
    try:
        with steps("load model"):
            # Load the weights before any long step: a wrong file or architecture fails now.
            encoder.load_model()
    except Exception as exc:  # a bad file fails in many ways (pickle, zip, size mismatch)
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CLIError(
            f"cannot load the model {args.model!r} with weights {str(args.pretrained)!r}: {message}"
        ) from None
    try:
        if args.embeddings is not None and Path(args.embeddings).is_file():
            read_embeddings(args.embeddings, image_dir, model_key=encoder.model_key())
        if U is None:
            with steps(
                "embed images", f"embedding {n} images with {args.model} ({args.pretrained})"
            ):
                U = encoder.transform([str(image_dir / p) for p in rel_paths])
            # Kept for reruns with other settings: --embeddings OUT_DIR/embeddings.npy
            from .._clip._embedding_files import save_embeddings

            out_dir.mkdir(parents=True, exist_ok=True)
            save_embeddings(out_dir / "embeddings.npy", U, rel_paths, encoder.model_key())
        seconds = encoder.estimate_noun_seconds(vocabulary)
        cost = (
            "all cached"
            if seconds == 0
            else f"about {_duration(seconds)} on {encoder.load_model().device}, an estimate "
            "that errs high; cached after this run (a GPU or --vocabulary common is faster)"
        )
        with steps("embed nouns", f"embedding {len(set(vocabulary))} distinct nouns: {cost}"):
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
        if args.head == "distill":
            from .._mutual_distillation import MutualDistillationClusterer

            clusterer = MutualDistillationClusterer(
                args.n_clusters,
                selector=selector,
                n_neighbors=min(50, n - 1),  # TAC's 50, or all others on small folders
                random_state=args.seed,
                device=args.device,
                verbose=not args.quiet,
            )
        else:
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
