"""The files ``skgradnorm cluster`` (and ``demo``) write: CSV, JSON and the HTML report.

- :func:`write_outputs` writes ``assignments.csv``, ``selected_nouns.csv``,
  ``clusters.json``, ``report.html``, one page per cluster under ``clusters/`` and, with
  known classes, ``metrics.json``. All of them are written to temporary names and renamed
  into place together (``_utils/_safe_files.py``), never through a symbolic link.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from .._utils._safe_files import StagedFiles, remove_orphan_temps
from ..metrics import clustering_metrics
from ._formats import csv_bytes, json_bytes
from ._out_dir import CLUSTER_PAGES, check_targets, cluster_page_files, make_out_dir
from ._report import (
    cluster_page_name,
    render_cluster_page,
    render_report_html,
    summarize_clusters,
    text_part,
    unit_rows64,
)
from ._report_data import MAP_METHODS, class_table, collection_map
from ._thumbnails import image_thumbnail, placeholder_thumbnail

__all__ = ["write_outputs"]


def _thumbnails(thumbnail, paths, indices, failures, n_jobs=None):
    """``(data_uri, caption, tooltip)`` for ``indices``; a placeholder for a failed one.

    With ``n_jobs``, made by joblib threads (Pillow releases the GIL while it decodes,
    resizes and encodes); the order is kept.
    """

    def one(i):
        try:
            uri, caption = thumbnail(i)
        except Exception as exc:  # the report must not fail after all the compute
            failures.append((paths[i], f"{type(exc).__name__}: {exc}"))  # atomic in CPython
            uri, caption = placeholder_thumbnail(), ""
        return uri, caption, paths[i]

    if n_jobs in (None, 1) or len(indices) < 2:
        return [one(i) for i in indices]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(i) for i in indices)


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
    noun_definitions=None,
    map_method="pca",
    max_map_points=3000,
    page_size=1000,
    n_jobs=None,
    charts=None,
):
    """Write the results of a fitted clusterer into ``out_dir`` (created if needed).

    Files (existing ones are replaced; a stale ``metrics.json`` and stale cluster pages
    are removed):

    - ``assignments.csv``: header ``path,cluster``, one row per image, in input order;
    - ``selected_nouns.csv``: header ``noun,center,score`` (``noun,center,score,definition``
      with ``noun_definitions``), the nouns the selector kept (by centre, then rank), with
      their centre and filter score (smaller is better);
    - ``clusters.json``: ``{"n_images", "n_clusters", "n_selected_nouns", "clusters": [
      {"cluster", "size", "nouns", "noun_cosines", "examples"}, ...], **info}`` (examples
      are paths, most central first; with ``noun_definitions`` each cluster also has
      ``noun_definitions``);
    - ``report.html``: see :func:`~skgradnorm._reporting._report.render_report_html`;
    - ``clusters/cluster-007.html`` (and ``cluster-007-2.html``, ... beyond ``page_size``
      members): every member's thumbnail, most central first;
    - ``metrics.json`` (with ``true_labels``): :func:`skgradnorm.metrics.clustering_metrics`
      plus ``confusion_matrix`` (``classes``, ``clusters``, ``counts``).

    CSV cells of names and nouns that start with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return get a ``'`` in front (spreadsheet-safe). A name that is not valid
    UTF-8 (surrogate escapes) is written with its original bytes in the CSV files and as
    a ``\\udcXX`` escape in JSON.

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
        file ``image_root / paths[i]`` (:func:`image_thumbnail`) with no caption. An image
        that fails gets a placeholder and one warning for all.
    image_root : str, path-like or None, default=None
        Folder that ``paths`` are relative to (None: as given).
    true_labels : sequence or None, default=None
        Known classes of the images: adds ``metrics.json``, the metrics, the confusion
        matrix and each cluster's class mix.
    title, meta_lines :
        Shown at the top of the report.
    info : dict or None
        Extra JSON-serialisable entries for ``clusters.json`` (model, parameters, ...).
    n_nouns, n_examples : int
        Describing nouns per cluster, and thumbnails per cluster on the main page.
    noun_definitions : sequence of str or None, default=None
        One definition per row of the selector's noun bank (indexable by
        ``selector_.selected_indices_``): shown with the nouns in the report and added
        as a ``definition`` column to ``selected_nouns.csv``.
    map_method : {"pca", "tsne", "auto"}, default="pca"
        How the map of the collection is drawn (see
        :func:`skgradnorm._reporting._report_data.collection_map`).
    max_map_points : int, default=3000
        At most this many images (a random sample) on the map.
    page_size : int, default=1000
        Thumbnails per cluster page.
    n_jobs : int or None, default=None
        Threads making the thumbnails (joblib's convention: None is 1, -1 all cores).
        Every image gets one (about 8 ms for a 1024 x 768 JPEG on one core).
    charts : sequence of (str, str, str) or None, default=None
        Extra panels for the overview, each ``(title, svg, note)``: ``svg`` an inline SVG
        made by the package (such as :func:`skgradnorm._reporting._charts.criterion_chart_svg`),
        ``title`` and ``note`` plain text (escaped).

    Returns
    -------
    result : dict
        ``{"files": {name: Path}, "clusters": list, "metrics": dict or None}``; the
        cluster pages are under ``files["clusters"]`` as a list; ``clusters`` are
        :func:`~skgradnorm._reporting._report.summarize_clusters`'s, with ``members`` and, with
        ``true_labels``, ``class_mix`` (``[(class, count)]``, largest first).

    Raises
    ------
    OutputFolderError
        ``out_dir`` is not usable (see :func:`._out_dir.check_output_dir`).
    """
    out_dir = Path(out_dir)
    paths = [str(p) for p in paths]
    labels = np.asarray(clusterer.labels_)
    _check_write_args(
        paths, labels, clusterer, true_labels, page_size, map_method, noun_definitions
    )
    pages_dir = _prepare_out_dir(out_dir)
    T = text_part(clusterer.selector_, embeddings)
    clusters = summarize_clusters(
        clusterer,
        embeddings,
        n_nouns=n_nouns,
        n_examples=n_examples,
        text_counterparts=T,
        noun_definitions=noun_definitions,
        return_members=True,
    )
    metrics, overview = _class_overview(true_labels, labels, clusters)
    Z = np.hstack([unit_rows64(embeddings), unit_rows64(T)])
    rows, coords, used = collection_map(Z, method=map_method, max_points=max_map_points)
    overview["map"] = {
        "coords": coords,
        "labels": labels[rows],
        "method": used,
        "n_total": len(paths),
    }
    overview["charts"] = list(charts or ())
    if thumbnail is None:
        thumbnail = _file_thumbnails(paths, image_root)
    pages = _Pages(thumbnail, paths, page_size, n_jobs, title, overview)
    files = {}
    created_pages_dir = not pages_dir.exists()
    pages_dir.mkdir(exist_ok=True)
    try:
        with StagedFiles() as staged:
            files.update(
                _stage_tables(
                    staged,
                    out_dir,
                    paths,
                    labels,
                    clusterer,
                    clusters,
                    metrics,
                    info,
                    noun_definitions,
                )
            )
            files[CLUSTER_PAGES], shown = pages.stage(staged, pages_dir, clusters)
            report = render_report_html(
                shown,
                title=title,
                meta_lines=meta_lines,
                metrics=metrics,
                overview=overview,
                footer=_FOOTER,
            )
            files["report.html"] = staged.add(out_dir / "report.html", report.encode("utf-8"))
            staged.commit()
    except BaseException:
        if created_pages_dir:  # an empty clusters/ would read as results in the next run
            with contextlib.suppress(OSError):
                pages_dir.rmdir()
        raise
    _remove_stale(out_dir, set(files[CLUSTER_PAGES]), metrics)
    _warn_failed_thumbnails(pages.failures)
    return {"files": files, "clusters": clusters, "metrics": metrics}


_FOOTER = (
    "Made by skgradnorm (language-assisted image clustering with GradNorm). Nouns: the "
    "selected nouns nearest to each cluster's mean text counterpart. Thumbnails: the members "
    "nearest to the cluster centre first; each cluster's page shows them all."
)


def _check_write_args(paths, labels, clusterer, true_labels, page_size, map_method, definitions):
    """Every check of :func:`write_outputs`' arguments, before anything is written."""
    if len(paths) != labels.shape[0]:
        raise ValueError(
            f"{len(paths)} paths for {labels.shape[0]} cluster labels; they must match."
        )
    if true_labels is not None and len(true_labels) != len(paths):
        raise ValueError(f"{len(true_labels)} true labels for {len(paths)} images.")
    if int(page_size) < 1:
        raise ValueError(f"page_size must be at least 1; got {page_size!r}.")
    if map_method not in MAP_METHODS:
        raise ValueError(f"map_method must be one of {MAP_METHODS}; got {map_method!r}.")
    n_bank = len(clusterer.selector_.assignments_)
    if definitions is not None and len(definitions) != n_bank:
        raise ValueError(
            f"noun_definitions has {len(definitions)} entries for a noun bank of "
            f"{n_bank} rows; pass one definition (or None) per row of the bank."
        )


def _prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir``, check where the outputs go, sweep leftovers of a killed run;
    returns the folder of the cluster pages."""
    make_out_dir(out_dir)
    check_targets(out_dir)
    pages_dir = out_dir / CLUSTER_PAGES
    remove_orphan_temps(out_dir, older_than_s=0)
    remove_orphan_temps(pages_dir, older_than_s=0)
    return pages_dir


def _class_overview(true_labels, labels, clusters):
    """``(metrics, overview)``: with known classes, the metrics, the confusion matrix, the
    class table of the overview and each cluster's ``class_mix``; else ``(None, {})``."""
    if true_labels is None:
        return None, {}
    n_clusters = len(clusters)
    metrics = clustering_metrics(true_labels, labels)
    table = class_table(true_labels, labels, n_clusters)
    metrics["confusion_matrix"] = {
        "classes": table["classes"],
        "clusters": list(range(n_clusters)),
        "counts": table["counts"].tolist(),
    }
    for c in clusters:
        column = table["counts"][:, c["cluster"]]
        c["class_mix"] = [
            (table["classes"][j], int(column[j]))
            for j in np.argsort(-column, kind="stable")
            if column[j]
        ]
    return metrics, {"classes": table}


def _file_thumbnails(paths, image_root):
    """``thumbnail(i)`` reading image ``i`` from its file."""
    root = Path(image_root) if image_root is not None else None

    def thumbnail(i):
        file = paths[i] if root is None else root / paths[i]
        return image_thumbnail(file), ""

    return thumbnail


def _stage_tables(staged, out_dir, paths, labels, clusterer, clusters, metrics, info, definitions):
    """Stage ``assignments.csv``, ``selected_nouns.csv``, ``clusters.json`` and, with known
    classes, ``metrics.json``; returns their paths by name."""
    selector = clusterer.selector_
    files = {}
    assignments = csv_bytes(
        ["path", "cluster"], zip(paths, labels.tolist(), strict=True), text_columns=(0,)
    )
    files["assignments.csv"] = staged.add(out_dir / "assignments.csv", assignments)
    header = ["noun", "center", "score"] + (["definition"] if definitions is not None else [])
    rows = []
    for name, i in zip(selector.selected_nouns_, selector.selected_indices_, strict=True):
        row = [name, int(selector.assignments_[i]), f"{float(selector.scores_[i]):.6g}"]
        if definitions is not None:
            definition = definitions[int(i)]
            row.append("" if definition is None else str(definition))
        rows.append(row)
    nouns = csv_bytes(header, rows, text_columns=(0, 3))
    files["selected_nouns.csv"] = staged.add(out_dir / "selected_nouns.csv", nouns)
    if metrics is not None:
        files["metrics.json"] = staged.add(out_dir / "metrics.json", json_bytes(metrics))
    public = [
        {
            **{key: v for key, v in c.items() if key not in ("members", "class_mix")},
            "examples": [paths[i] for i in c["examples"]],
        }
        for c in clusters
    ]
    document = {
        "n_images": len(paths),
        "n_clusters": len(clusters),
        "n_selected_nouns": len(selector.selected_nouns_),
        **(info or {}),
        "clusters": public,
    }
    files["clusters.json"] = staged.add(out_dir / "clusters.json", json_bytes(document))
    return files


class _Pages:
    """The cluster pages (every member's thumbnail, ``page_size`` per page), and the
    previews of the main page; thumbnails that fail are collected in ``failures``."""

    def __init__(self, thumbnail, paths, page_size, n_jobs, title, overview):
        self.thumbnail, self.paths = thumbnail, paths
        self.page_size, self.n_jobs, self.title = page_size, n_jobs, title
        self.classes = overview["classes"]["classes"] if "classes" in overview else None
        self.failures = []

    def _thumbs(self, indices, n_jobs=None):
        return _thumbnails(self.thumbnail, self.paths, indices, self.failures, n_jobs)

    def stage(self, staged, pages_dir, clusters):
        """Stage every cluster's pages; returns their paths and the clusters as the main
        page shows them (with ``thumbnails`` of the examples and a link to ``page``)."""
        written, shown = [], []
        n_clusters = len(clusters)
        for c in clusters:
            members, size = c["members"], self.page_size
            chunks = [members[j : j + size] for j in range(0, len(members), size)] or [[]]
            names = [cluster_page_name(c["cluster"], n_clusters, j + 1) for j in range(len(chunks))]
            preview = {}
            for j, chunk in enumerate(chunks):
                thumbs = self._thumbs(chunk, self.n_jobs)
                preview.update(
                    (i, t) for i, t in zip(chunk, thumbs, strict=True) if i in c["examples"]
                )
                page = render_cluster_page(
                    c, thumbs, title=self.title, pages=names, page=j + 1, classes=self.classes
                )
                written.append(staged.add(pages_dir / names[j], page.encode("utf-8")))
            missing = [i for i in c["examples"] if i not in preview]
            preview.update(zip(missing, self._thumbs(missing), strict=True))
            shown.append(
                {
                    **c,
                    "thumbnails": [preview[i] for i in c["examples"]],
                    "page": f"{CLUSTER_PAGES}/{names[0]}",
                }
            )
        return written, shown


def _remove_stale(out_dir: Path, written: set, metrics) -> None:
    """Once the new results are in place: remove the stale cluster pages and metrics."""
    for stale in cluster_page_files(out_dir):
        if stale not in written and stale.is_file() and not stale.is_symlink():
            stale.unlink()
    metrics_path = out_dir / "metrics.json"
    if metrics is None and metrics_path.is_file() and not metrics_path.is_symlink():
        metrics_path.unlink()


def _warn_failed_thumbnails(failures) -> None:
    if failures:
        listed = "; ".join(f"{name}: {reason}" for name, reason in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        warnings.warn(
            f"{len(failures)} thumbnail(s) could not be made and show a placeholder: "
            f"{listed}{more}",
            UserWarning,
            stacklevel=3,
        )
