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
    EMBEDDING_FILES,
    CLIError,
    Steps,
    check_cache_dir,
    check_device,
    check_tune_grid,
    claim_out_dir,
    load_vocabulary,
    read_embeddings,
    read_labels,
    user_path,
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
    from .._warm_start import describe_choice
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
    else:
        clusterer.fit(U)
        if auto:
            reason = describe_k_search(clusterer)
            charts.append(("Number of clusters", criterion_chart_svg(estimator=clusterer), reason))
            reasons.append(reason)
    heads = describe_choice(clusterer)
    return clusterer, charts, reasons + ([heads] if heads else [])


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
    with claim_out_dir(inputs.out_dir, args.overwrite, extra_files=EMBEDDING_FILES):
        steps = Steps(3 if args.embeddings is not None else 4, args.quiet)
        with steps("find images"):  # every input checked before the long steps
            _read_inputs(args, inputs)
        encoder = _load_encoder(args, steps)
        E = _embed_nouns(args, inputs, encoder, steps)
        U = _embed_images(args, inputs, encoder, steps)
        clusterer, charts, reasons = _select_and_cluster(args, inputs, U, E, steps)
        result = _write(args, inputs, clusterer, U, charts, reasons, steps)
    _print_summary(args, inputs, clusterer, result, reasons, steps, time.perf_counter() - t_start)
    return 0


def _check_cluster_args(args) -> _Inputs:
    """The checks that need no file read: what to cluster, where to write, the options."""
    if args.image_dir is None and args.embeddings is None:
        raise CLIError("give IMAGE_DIR (a folder of images) or --embeddings (from a past run).")
    image_dir = user_path(args.image_dir, "IMAGE_DIR") if args.image_dir is not None else None
    if image_dir is not None and not image_dir.is_dir():
        raise CLIError(f"IMAGE_DIR {str(image_dir)!r} is not a folder.")
    if args.tune_grid is not None and not args.tune:
        raise CLIError("--tune-grid is the grid of --tune; add --tune, or leave --tune-grid out.")
    if args.head == "distill" and (args.n_clusters == "auto" or args.tune):
        raise CLIError(
            "--head distill needs an integer --n-clusters and no --tune; choose K and the "
            "settings with the default head first (--n-clusters auto --tune)."
        )
    check_device(args.device)
    if args.tune_grid is not None:
        import numpy as np

        # the estimators as the run will make them, on a stand-in noun bank
        check_tune_grid(_make_clusterer(args, None, np.zeros((1, 1))), args.tune_grid)
    check_cache_dir(args.cache_dir)
    return _Inputs(user_path(args.out, "--out"), image_dir, [], None, None, [], None)


def _check_weights_can_load(args) -> None:
    """A tag that can be neither found in a cache nor downloaded fails now, in a second,
    before the vocabulary is read and open_clip is imported."""
    from .._clip._hub import check_tag_loadable
    from ..exceptions import PretrainedWeightsError

    try:
        check_tag_loadable(args.model, args.pretrained, cli=True)
    except PretrainedWeightsError as exc:
        raise CLIError(
            f"cannot load the model {args.model!r} with weights {str(args.pretrained)!r}: {exc}"
        ) from None


def _read_inputs(args, inputs: _Inputs) -> None:
    """Find the images (or read --embeddings), check K and C against them, read the labels
    and the vocabulary."""
    if args.embeddings is not None:
        inputs.embeddings, inputs.rel_paths, inputs.image_dir = read_embeddings(
            user_path(args.embeddings, "--embeddings"), inputs.image_dir
        )
    _check_weights_can_load(args)  # before torch and the vocabulary are loaded: a second
    from .._clip._images import IMAGE_EXTENSIONS, find_images

    if args.embeddings is None:
        try:
            inputs.rel_paths = find_images(inputs.image_dir)
        except OSError as exc:  # a folder that cannot be listed
            raise CLIError(str(exc)) from None
    n = len(inputs.rel_paths)
    if n == 0:
        raise CLIError(
            f"no images found in {str(inputs.image_dir)!r} (searched recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}, any case)."
        )
    if args.n_clusters != "auto" and args.n_clusters > n:
        raise CLIError(f"--n-clusters {args.n_clusters} is larger than the number of images ({n}).")
    centers = [args.n_centers, *(args.tune_grid or {}).get("selector__n_centers", [])]
    too_many = [c for c in centers if c != "auto" and isinstance(c, int) and c > n]
    if too_many:
        raise CLIError(
            f"--n-centers {too_many[0]} is larger than the number of images ({n}); "
            "use at most that many, or 'auto'."
        )
    if args.labels:
        inputs.true_labels = read_labels(args.labels, inputs.image_dir, inputs.rel_paths)
    inputs.vocabulary, inputs.definitions = load_vocabulary(args.vocabulary)
    if args.strategy == "sic" and len(set(inputs.vocabulary)) < 2:
        raise CLIError(
            "--strategy sic drops the nouns closest to the mean noun, which with a single "
            "noun is all of them; give a vocabulary of several nouns, or another --strategy."
        )


def _load_encoder(args, steps):
    """The encoder, its weights loaded now: a wrong file or architecture fails here."""
    encoder = encoder_from_args(args, verbose=_show_progress(args))
    try:
        with steps("load model"):
            encoder.load_model()
    except Exception as exc:  # a bad file fails in many ways (pickle, zip, size mismatch)
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CLIError(
            f"cannot load the model {args.model!r} with weights {str(args.pretrained)!r}: {message}"
        ) from None
    return encoder


def _show_progress(args) -> bool:
    """Progress bars only for a person watching: not with --quiet, not into a file or pipe."""
    import sys

    return not args.quiet and bool(getattr(sys.stderr, "isatty", lambda: False)())


def _embed_nouns(args, inputs: _Inputs, encoder, steps):
    """The noun bank's embeddings, the cost said first (one estimate, one line)."""
    from .._clip._nouns import describe_noun_cost
    from .._utils._torch import resolve_device

    vocabulary = inputs.vocabulary
    try:
        seconds = encoder.estimate_noun_seconds(vocabulary)  # encode_nouns reuses its sample
        cost = (
            "all cached"
            if seconds == 0
            else f"{describe_noun_cost(seconds, resolve_device(args.device))}, cached "
            "after this run (a GPU or --vocabulary common is faster)"
        )
        n = len(set(vocabulary))
        with steps("embed nouns", f"embedding {n:,} distinct nouns: {cost}"):
            E = encoder.encode_nouns(vocabulary)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    if args.strategy == "sic":
        _check_sic_keeps_nouns(args, inputs, E)
    return E


def _check_sic_keeps_nouns(args, inputs: _Inputs, E) -> None:
    """SIC's uniqueness rule depends on the nouns alone: check it before the images."""
    from .._gradnorm import sic_scores

    threshold = _make_clusterer(args, inputs, E).selector.uniqueness_threshold
    scores, _ = sic_scores(E, E[:1], uniqueness_threshold=threshold)
    if not (scores < float("inf")).any():
        raise CLIError(
            f"--strategy sic drops every one of the {len(set(inputs.vocabulary))} nouns as "
            f"generic (each has a cosine of at least {1 - threshold:g} to the mean noun); use "
            "--strategy gradnorm, or a vocabulary of more varied nouns."
        )


def _embed_images(args, inputs: _Inputs, encoder, steps):
    """The images' embeddings (kept in OUT_DIR for reruns), or those of --embeddings."""
    from .._clip._embedding_files import save_embeddings
    from .._clip._model import weights_source
    from ..exceptions import PretrainedWeightsError, UnreadableImageError

    user_errors = (UnreadableImageError, PretrainedWeightsError, FileNotFoundError, ValueError)
    U, n = inputs.embeddings, len(inputs.rel_paths)
    try:
        if args.embeddings is not None:  # made by this model? (checked now it is loaded)
            read_embeddings(
                user_path(args.embeddings, "--embeddings"),
                inputs.image_dir,
                model_key=encoder.model_key(),
            )
            return U
        source = weights_source(args.model, args.pretrained)
        with steps("embed images", f"embedding {n:,} images with {args.model} ({source})"):
            U = encoder.transform([str(inputs.image_dir / p) for p in inputs.rel_paths])
    except user_errors as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    # Kept for reruns with other settings: --embeddings OUT_DIR/embeddings.npy
    target = inputs.out_dir / "embeddings.npy"
    try:
        save_embeddings(target, U, inputs.rel_paths, encoder.model_key())
    except OSError as exc:
        raise CLIError(
            f"cannot save the image embeddings to {str(target)!r} ({exc.strerror or exc}); "
            "nothing else was written. Free some space (or choose another --out) and run "
            "again: the image embeddings are cached, so the rerun is quick."
        ) from None
    return U


def _make_clusterer(args, inputs: _Inputs, E):
    """The selector on the noun bank ``E`` and the clusterer (k-means or TAC's heads)."""
    from .. import GradNormNounSelector, LanguageAssistedClusterer

    selector = GradNormNounSelector(
        E,
        vocabulary=None if inputs is None else inputs.vocabulary,
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
            # TAC's 50, or all on small folders
            n_neighbors=50 if inputs is None else min(50, len(inputs.rel_paths) - 1),
            random_state=args.seed,
            device=args.device,
            verbose=_show_progress(args),
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
    from .._clip._model import weights_source

    sel = clusterer.selector_
    n_clusters = int(getattr(clusterer, "n_clusters_", clusterer.n_clusters))
    chosen = sel.get_params()
    image_dir, vocabulary = inputs.image_dir, inputs.vocabulary
    info = {
        "source": "cluster",
        "image_dir": str(image_dir.resolve()) if image_dir is not None else None,
        "model": args.model,
        "pretrained": weights_source(args.model, args.pretrained),
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
        f"model {args.model} ({info['pretrained']}).",
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
        except OSError as exc:  # a full disk, a folder made read-only during the run, ...
            raise CLIError(
                f"cannot write the results into {str(inputs.out_dir)!r} "
                f"({exc.strerror or exc}); the results already there (if any) were left as "
                "they were. Free some space or fix the folder and run again, with "
                f"--embeddings {inputs.out_dir / 'embeddings.npy'} to skip the embedding."
            ) from None


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
    from .._reporting._out_dir import output_folder_lock

    check_device(args.device)
    check_cache_dir(args.cache_dir)
    image_dir, out = user_path(args.image_dir, "IMAGE_DIR"), user_path(args.out, "--out")
    encoder = encoder_from_args(args, verbose=False)  # the workers embed, quietly
    t0 = time.perf_counter()
    try:
        with output_folder_lock(out):  # one job at a time per folder
            U, paths = embed_directory(
                image_dir,
                out,
                encoder=encoder,
                scheduler=args.scheduler,
                partition_size=args.partition_size,
                resume=not args.no_resume,
            )
    except (ValueError, OSError, RuntimeError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    print(
        f"Embedded {len(paths)} images ({U.shape[1]} dimensions) into {out} in "
        f"{time.perf_counter() - t0:.1f} s. Cluster them with: skgradnorm cluster "
        f"--embeddings {out} -k K -o OUT_DIR"
    )
    return 0
