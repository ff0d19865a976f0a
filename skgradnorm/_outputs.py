"""The files ``skgradnorm cluster`` (and ``demo``) write: CSV, JSON and the HTML report.

:func:`write_outputs` writes ``assignments.csv``, ``selected_nouns.csv``,
``clusters.json``, ``report.html`` and, with known classes, ``metrics.json``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ._report import render_report_html, summarize_clusters
from ._thumbnails import image_thumbnail
from .metrics import clustering_metrics

__all__ = ["OUTPUT_FILES", "existing_outputs", "write_outputs"]

#: Every file :func:`write_outputs` may write (``metrics.json`` only with known classes).
OUTPUT_FILES = (
    "assignments.csv",
    "selected_nouns.csv",
    "clusters.json",
    "report.html",
    "metrics.json",
)


def existing_outputs(out_dir) -> list[str]:
    """Names of the output files (:data:`OUTPUT_FILES`) already present in ``out_dir``."""
    out_dir = Path(out_dir)
    return [name for name in OUTPUT_FILES if (out_dir / name).exists()]


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def write_outputs(
    out_dir,
    paths,
    clusterer,
    embeddings,
    *,
    thumbnail=None,
    image_root=None,
    true_labels=None,
    title="skgradnorm clusters",
    meta_lines=(),
    info=None,
    n_nouns=5,
    n_examples=12,
):
    """Write the results of a fitted clusterer into ``out_dir`` (created if needed).

    Files (existing ones are replaced; a stale ``metrics.json`` is removed when no
    ``true_labels`` are given):

    - ``assignments.csv``: header ``path,cluster``, one row per image, in input order;
    - ``selected_nouns.csv``: header ``noun,center,score``, the nouns the selector kept
      (by centre, then rank), with their centre and filter score (smaller is better);
    - ``clusters.json``: ``{"n_images", "n_clusters", "n_selected_nouns", "clusters": [
      {"cluster", "size", "nouns", "noun_cosines", "examples"}, ...], **info}`` (examples
      are paths, most central first);
    - ``report.html``: see :func:`render_report_html`;
    - ``metrics.json`` (with ``true_labels``): see :func:`skgradnorm.metrics.clustering_metrics`.

    Parameters
    ----------
    out_dir : str or path-like
        The output folder.
    paths : sequence of str
        One name per image (as written to the files), in the order of ``embeddings``.
    clusterer : LanguageAssistedClusterer
        Fitted on ``embeddings``.
    embeddings : ndarray of shape (n_images, n_features)
        The image embeddings.
    thumbnail : callable or None, default=None
        ``thumbnail(i) -> (data_uri, caption)`` for image ``i``. None reads the image
        file ``image_root / paths[i]`` (:func:`image_thumbnail`) with no caption.
    image_root : str, path-like or None, default=None
        Folder that ``paths`` are relative to (None: as given).
    true_labels : sequence or None, default=None
        Known classes of the images: adds ``metrics.json`` and shows the metrics.
    title, meta_lines :
        Shown at the top of the report.
    info : dict or None
        Extra JSON-serialisable entries for ``clusters.json`` (model, parameters, ...).
    n_nouns, n_examples : int
        Describing nouns and thumbnails per cluster.

    Returns
    -------
    result : dict
        ``{"files": {name: Path}, "clusters": list, "metrics": dict or None}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in paths]
    labels = np.asarray(clusterer.labels_)
    if len(paths) != labels.shape[0]:
        raise ValueError(
            f"{len(paths)} paths for {labels.shape[0]} cluster labels; they must match."
        )
    selector = clusterer.selector_
    clusters = summarize_clusters(clusterer, embeddings, n_nouns=n_nouns, n_examples=n_examples)
    files = {}

    # assignments.csv
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "cluster"])
    writer.writerows(zip(paths, labels.tolist(), strict=False))
    files["assignments.csv"] = out_dir / "assignments.csv"
    _write_text(files["assignments.csv"], buf.getvalue())

    # selected_nouns.csv
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["noun", "center", "score"])
    for name, i in zip(selector.selected_nouns_, selector.selected_indices_, strict=False):
        writer.writerow([name, int(selector.assignments_[i]), f"{float(selector.scores_[i]):.6g}"])
    files["selected_nouns.csv"] = out_dir / "selected_nouns.csv"
    _write_text(files["selected_nouns.csv"], buf.getvalue())

    # metrics.json
    metrics = None
    metrics_path = out_dir / "metrics.json"
    if true_labels is not None:
        metrics = clustering_metrics(true_labels, labels)
        files["metrics.json"] = metrics_path
        _write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    elif metrics_path.exists():
        metrics_path.unlink()

    # clusters.json
    document = {
        "n_images": len(paths),
        "n_clusters": len(clusters),
        "n_selected_nouns": len(selector.selected_nouns_),
        **(info or {}),
        "clusters": [{**c, "examples": [paths[i] for i in c["examples"]]} for c in clusters],
    }
    files["clusters.json"] = out_dir / "clusters.json"
    _write_text(files["clusters.json"], json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    # report.html
    if thumbnail is None:
        root = Path(image_root) if image_root is not None else None

        def thumbnail(i):
            file = paths[i] if root is None else root / paths[i]
            return image_thumbnail(file), ""

    shown = []
    for c in clusters:
        thumbs = []
        for i in c["examples"]:
            uri, caption = thumbnail(i)
            thumbs.append((uri, caption, paths[i]))
        shown.append({**c, "thumbnails": thumbs})
    files["report.html"] = out_dir / "report.html"
    _write_text(
        files["report.html"],
        render_report_html(
            shown,
            title=title,
            meta_lines=meta_lines,
            metrics=metrics,
            footer="Made by skgradnorm (language-assisted image clustering with GradNorm). "
            "Nouns: the selected nouns nearest to each cluster's mean text counterpart. "
            "Thumbnails: the members nearest to the cluster centre.",
        ),
    )
    return {"files": files, "clusters": clusters, "metrics": metrics}
