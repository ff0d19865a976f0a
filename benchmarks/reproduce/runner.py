"""Run rows of the settings table: embed, fit centres on train, cluster test, score.

The pipeline of one row (dataset, backbone): embed the noun bank once per backbone (each
distinct string once, then expanded to the bank's rows), embed the training and test
images, fit :class:`skgradnorm.GradNormNounSelector` (image centres and the GradNorm
filter) on the TRAINING split, give every TEST image its text counterpart, and cluster
``[u ; t]`` with :class:`skgradnorm.SphericalKMeans`; the image-only baseline clusters
``u`` alone with the same k-means. Scores: :func:`skgradnorm.metrics.clustering_metrics`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .settings import PROTOCOLS, SEED

EMBED_CHUNK = 4096  # images handed to encoder.transform at a time (bounds memory)
METHODS = ("GradNorm", "image-only k-means")


def log(message):
    print(message, file=sys.stderr, flush=True)


def embed_images(encoder, images, chunk_size=EMBED_CHUNK) -> np.ndarray:
    """Embed a sequence of images in chunks (only one chunk of decoded images at a time)."""
    parts = [
        np.asarray(encoder.transform(images[start : start + chunk_size]), dtype=np.float32)
        for start in range(0, len(images), chunk_size)
    ]
    return np.concatenate(parts, axis=0)


def embed_nouns(encoder, nouns) -> tuple[np.ndarray, int]:
    """Noun embeddings in the order of ``nouns``, each distinct string embedded once.

    Returns ``(E, n_distinct)``; rows of equal strings are equal.
    """
    distinct = list(dict.fromkeys(nouns))
    position = {noun: i for i, noun in enumerate(distinct)}
    E_distinct = np.asarray(encoder.encode_nouns(distinct), dtype=np.float32)
    return E_distinct[[position[noun] for noun in nouns]], len(distinct)


def kmeans_params(protocol: str, part: str, n_clusters: int, n_samples: int) -> dict:
    """Keyword arguments of the centre (``part="centres"``) or final k-means."""
    spec = PROTOCOLS[protocol]
    params = dict(spec[part], random_state=SEED)
    per_centroid = spec["points_per_centroid"]
    if per_centroid is not None and n_samples > per_centroid * n_clusters:
        params["max_samples"] = per_centroid * n_clusters  # faiss's training subsample
    return params


def score(y_true, y_pred) -> dict:
    """ACC, NMI and ARI as fractions (ARI may be negative)."""
    from skgradnorm.metrics import clustering_metrics

    m = clustering_metrics(y_true, y_pred)
    return {"acc": m["ACC"], "nmi": m["NMI"], "ari": m["ARI"]}


def cluster_dataset(U_train, U_test, y_test, E, nouns, settings, protocol="paper", device=None):
    """Fit the selector on the training split, cluster the test split; two result rows.

    ``settings`` holds ``n_clusters``, ``n_centers``, ``temperature``, ``top_k`` and
    ``retrieval_temperature``. Returns ``[gradnorm_row, image_only_row]``: dicts with the
    scores, the predicted labels and timings (and the kept nouns for GradNorm).
    """
    from skgradnorm import GradNormNounSelector, SphericalKMeans

    n_centers = settings["n_centers"]
    if isinstance(n_centers, int):
        centre_params = kmeans_params(protocol, "centres", n_centers, len(U_train))
    else:  # "auto": the selector picks C, so no faiss-like subsample can be sized here
        centre_params = dict(PROTOCOLS[protocol]["centres"], random_state=SEED)
    t0 = time.perf_counter()
    selector = GradNormNounSelector(
        noun_embeddings=E,
        vocabulary=nouns,
        n_centers=n_centers,
        temperature=settings["temperature"],
        top_k=settings["top_k"],
        retrieval_temperature=settings["retrieval_temperature"],
        concatenate=True,
        device=device,
        **centre_params,
    ).fit(U_train)
    Z = selector.transform(U_test)  # [u ; t], 2d columns
    t_select = time.perf_counter() - t0

    K = settings["n_clusters"]
    rows = []
    for method, X in zip(METHODS, (Z, U_test), strict=True):
        t0 = time.perf_counter()
        params = kmeans_params(protocol, "final", K, len(X))
        km = SphericalKMeans(K, device=device, **params).fit(X)
        row = {"method": method, **score(y_test, km.labels_), "final_kmeans": params}
        row["seconds"] = time.perf_counter() - t0 + (t_select if method == METHODS[0] else 0.0)
        row["y_pred"] = km.labels_.astype(int).tolist()
        if method == METHODS[0]:
            row["centre_kmeans"] = centre_params
            row["n_centers"] = int(selector.n_centers_)
            row["selected_indices"] = selector.selected_indices_.astype(int).tolist()
            row["selected_nouns"] = list(selector.selected_nouns_)
        rows.append(row)
    return rows


def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


def format_table(results) -> str:
    """Markdown table of result rows: obtained scores, then the reported ones."""
    lines = [
        "| dataset | backbone | method | ACC | NMI | ARI | reported ACC | reported NMI "
        "| reported ARI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rep = r.get("reported") or {}
        lines.append(
            f"| {r['dataset']} | {r['backbone']} | {r['method']} | {_fmt(r['acc'])} | "
            f"{_fmt(r['nmi'])} | {_fmt(r['ari'])} | {_fmt(rep.get('acc'))} | "
            f"{_fmt(rep.get('nmi'))} | {_fmt(rep.get('ari'))} |"
        )
    return "\n".join(lines)


def format_markdown(report) -> str:
    """The whole report as a Markdown document (table, skipped rows, set-up)."""
    parts = [
        "# GradNorm (training-free): obtained against reported",
        "",
        f"Protocol `{report['protocol']}`; noun bank `{report['vocabulary']}` "
        f"({report['n_nouns']} entries, {report['n_distinct_nouns']} distinct); "
        f"device {report['device']}; skgradnorm {report['skgradnorm_version']}. Scores are "
        "fractions (0.911 = 91.1 %); reported numbers are the paper's (arXiv:2510.16335), "
        "n/a where it gives none or where a setting was overridden.",
        "",
        format_table(report["results"]),
    ]
    if report["skipped"]:
        parts += ["", "Skipped:", ""]
        parts += [f"- {s['dataset']} / {s['backbone']}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(parts) + "\n"
