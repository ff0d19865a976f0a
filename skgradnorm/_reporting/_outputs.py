"""The files ``skgradnorm cluster`` (and ``demo``) write: CSV, JSON and the HTML report.

- :func:`check_output_dir` says, before any computation, whether a folder can take them;
- :func:`write_outputs` writes ``assignments.csv``, ``selected_nouns.csv``,
  ``clusters.json``, ``report.html``, one page per cluster under ``clusters/`` and, with
  known classes, ``metrics.json``. All of them are written to temporary names and renamed
  into place together (``_utils/_safe_files.py``), never through a symbolic link.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import warnings
from pathlib import Path

import numpy as np

from .._utils._safe_files import TMP_SUFFIX, StagedFiles, refuse_link, remove_orphan_temps
from ..exceptions import OutputFolderError
from ..metrics import clustering_metrics
from ._formats import csv_bytes, json_bytes
from ._report import (
    _normalize_rows,
    _text_part,
    cluster_page_name,
    render_cluster_page,
    render_report_html,
    summarize_clusters,
)
from ._report_data import MAP_METHODS, class_table, collection_map
from ._thumbnails import image_thumbnail, placeholder_thumbnail

__all__ = ["CLUSTER_PAGES", "OUTPUT_FILES", "check_output_dir", "existing_outputs", "write_outputs"]

#: The folder of the per-cluster pages, inside the output folder.
CLUSTER_PAGES = "clusters"

#: Everything :func:`write_outputs` may write (``metrics.json`` only with known classes).
OUTPUT_FILES = (
    "assignments.csv",
    "selected_nouns.csv",
    "clusters.json",
    "report.html",
    "metrics.json",
    CLUSTER_PAGES,
)


def existing_outputs(out_dir) -> list[str]:
    """Names of the outputs (:data:`OUTPUT_FILES`) already present in ``out_dir``."""
    out_dir = Path(out_dir)
    return [name for name in OUTPUT_FILES if os.path.lexists(out_dir / name)]


def _cluster_page_files(out_dir: Path) -> list[Path]:
    pages = out_dir / CLUSTER_PAGES
    if not pages.is_dir() or pages.is_symlink():
        return []
    return sorted(pages.glob("cluster-*.html"))


def _check_targets(out_dir: Path) -> None:
    """Refuse links, and non-files where files go, among the outputs in ``out_dir``."""
    for name in OUTPUT_FILES:
        path = out_dir / name
        refuse_link(path)
        if name == CLUSTER_PAGES:
            if path.exists() and not path.is_dir():
                raise OutputFolderError(
                    f"cannot write the cluster pages into {str(path)!r}: it is not a folder; "
                    "remove it or choose another output folder."
                )
        elif path.exists() and not path.is_file():
            raise OutputFolderError(
                f"cannot write {str(path)!r}: something that is not a regular file is there; "
                "remove it or choose another output folder."
            )
    for path in _cluster_page_files(out_dir):
        refuse_link(path)


def _probe_writable(folder: Path) -> None:
    probe = folder / f".probe.{secrets.token_hex(6)}{TMP_SUFFIX}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputFolderError(
            f"output folder {str(folder)!r} is not writable ({exc.strerror or exc}); "
            "choose another folder."
        ) from None


def check_output_dir(out_dir, *, overwrite, own_source=None) -> None:
    """Check that ``out_dir`` can take the outputs, before any computation.

    The folder must be a folder or creatable (it is created to be sure, and removed
    again with any parent created with it), writable (a probe file is created and
    deleted), and hold no symbolic link (and nothing but a regular file) where an output
    goes. Without ``overwrite`` it must not already hold results, unless they are from
    the same kind of run (``own_source``, the ``source`` entry of its ``clusters.json``).

    Parameters
    ----------
    out_dir : str or path-like
        The output folder.
    overwrite : bool
        Whether results already in ``out_dir`` may be replaced.
    own_source : str or None, default=None
        Results whose ``clusters.json`` has this ``source`` are replaced without
        ``overwrite`` (the demo replaces its own earlier output).

    Raises
    ------
    OutputFolderError
        A ``ValueError`` whose one-line message names the path and what to do.

    Examples
    --------
    >>> import tempfile
    >>> check_output_dir(tempfile.mkdtemp() + "/new/out", overwrite=False)
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} exists and is not a folder; choose another one."
        )
    created = []
    if not out_dir.exists():
        missing = out_dir
        while not os.path.lexists(missing) and missing.parent != missing:
            created.append(missing)
            missing = missing.parent
        if missing.is_symlink() and not missing.exists():
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created: {str(missing)!r} is a "
                "symbolic link to something missing; choose another one."
            )
        if os.path.lexists(missing) and not missing.is_dir():
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created: {str(missing)!r} is a file, "
                "not a folder; choose another one."
            )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(
                f"output folder {str(out_dir)!r} cannot be created ({exc.strerror or exc}); "
                "choose another one."
            ) from None
    try:
        _probe_writable(out_dir)
    finally:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    if created:
        return
    _check_targets(out_dir)
    present = existing_outputs(out_dir)
    if not present or overwrite:
        return
    if own_source is not None:
        try:
            doc = json.loads((out_dir / "clusters.json").read_text(encoding="utf-8"))
            source = doc.get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        if source == own_source:
            return
    raise OutputFolderError(
        f"{str(out_dir)!r} already holds results ({', '.join(present)}); pass overwrite "
        "(--overwrite) to replace them, or choose another output folder."
    )


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
    - ``report.html``: see :func:`~skgradnorm._report.render_report_html`;
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
        :func:`skgradnorm._report_data.collection_map`).
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
        :func:`~skgradnorm._report.summarize_clusters`'s, with ``members`` and, with
        ``true_labels``, ``class_mix`` (``[(class, count)]``, largest first).

    Raises
    ------
    OutputFolderError
        ``out_dir`` is not usable (see :func:`check_output_dir`).
    """
    out_dir = Path(out_dir)
    paths = [str(p) for p in paths]
    labels = np.asarray(clusterer.labels_)
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
    if noun_definitions is not None and len(noun_definitions) != n_bank:
        raise ValueError(
            f"noun_definitions has {len(noun_definitions)} entries for a noun bank of "
            f"{n_bank} rows; pass one definition (or None) per row of the bank."
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} exists and is not a folder; choose another one."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"output folder {str(out_dir)!r} cannot be created ({exc.strerror or exc})."
        ) from None
    _check_targets(out_dir)
    pages_dir = out_dir / CLUSTER_PAGES
    remove_orphan_temps(out_dir, older_than_s=0)
    remove_orphan_temps(pages_dir, older_than_s=0)

    selector = clusterer.selector_
    T = _text_part(selector, embeddings)
    clusters = summarize_clusters(
        clusterer,
        embeddings,
        n_nouns=n_nouns,
        n_examples=n_examples,
        text_counterparts=T,
        noun_definitions=noun_definitions,
        return_members=True,
    )
    n_clusters = len(clusters)
    overview = {}
    metrics = None
    if true_labels is not None:
        metrics = clustering_metrics(true_labels, labels)
        table = class_table(true_labels, labels, n_clusters)
        metrics["confusion_matrix"] = {
            "classes": table["classes"],
            "clusters": list(range(n_clusters)),
            "counts": table["counts"].tolist(),
        }
        overview["classes"] = table
        for c in clusters:
            column = table["counts"][:, c["cluster"]]
            c["class_mix"] = [
                (table["classes"][j], int(column[j]))
                for j in np.argsort(-column, kind="stable")
                if column[j]
            ]
    Z = np.hstack([_normalize_rows(embeddings), _normalize_rows(T)])
    rows, coords, used = collection_map(Z, method=map_method, max_points=max_map_points)
    overview["map"] = {
        "coords": coords,
        "labels": labels[rows],
        "method": used,
        "n_total": len(paths),
    }
    overview["charts"] = list(charts or ())

    if thumbnail is None:
        root = Path(image_root) if image_root is not None else None

        def thumbnail(i):
            file = paths[i] if root is None else root / paths[i]
            return image_thumbnail(file), ""

    files = {}
    failures = []
    created_pages_dir = not pages_dir.exists()
    pages_dir.mkdir(exist_ok=True)
    try:
        with StagedFiles() as staged:
            header = ["path", "cluster"]
            files["assignments.csv"] = staged.add(
                out_dir / "assignments.csv",
                csv_bytes(header, zip(paths, labels.tolist(), strict=True), text_columns=(0,)),
            )
            header = ["noun", "center", "score"]
            sel_rows = []
            for name, i in zip(selector.selected_nouns_, selector.selected_indices_, strict=True):
                row = [name, int(selector.assignments_[i]), f"{float(selector.scores_[i]):.6g}"]
                if noun_definitions is not None:
                    definition = noun_definitions[int(i)]
                    row.append("" if definition is None else str(definition))
                sel_rows.append(row)
            if noun_definitions is not None:
                header.append("definition")
            files["selected_nouns.csv"] = staged.add(
                out_dir / "selected_nouns.csv", csv_bytes(header, sel_rows, text_columns=(0, 3))
            )
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
                "n_clusters": n_clusters,
                "n_selected_nouns": len(selector.selected_nouns_),
                **(info or {}),
                "clusters": public,
            }
            files["clusters.json"] = staged.add(out_dir / "clusters.json", json_bytes(document))

            # One page per cluster (split every page_size members); previews kept for the main page.
            files[CLUSTER_PAGES] = []
            shown = []
            classes = overview["classes"]["classes"] if "classes" in overview else None
            for c in clusters:
                members = c["members"]
                chunks = [members[j : j + page_size] for j in range(0, len(members), page_size)]
                chunks = chunks or [[]]
                names = [
                    cluster_page_name(c["cluster"], n_clusters, j + 1) for j in range(len(chunks))
                ]
                preview = {}
                for j, chunk in enumerate(chunks):
                    thumbs = _thumbnails(thumbnail, paths, chunk, failures, n_jobs)
                    preview.update(
                        (i, t) for i, t in zip(chunk, thumbs, strict=True) if i in c["examples"]
                    )
                    page = render_cluster_page(
                        c, thumbs, title=title, pages=names, page=j + 1, classes=classes
                    )
                    files[CLUSTER_PAGES].append(
                        staged.add(pages_dir / names[j], page.encode("utf-8"))
                    )
                missing = [i for i in c["examples"] if i not in preview]
                preview.update(
                    zip(missing, _thumbnails(thumbnail, paths, missing, failures), strict=True)
                )
                shown.append(
                    {
                        **c,
                        "thumbnails": [preview[i] for i in c["examples"]],
                        "page": f"{CLUSTER_PAGES}/{names[0]}",
                    }
                )
            page = render_report_html(
                shown,
                title=title,
                meta_lines=meta_lines,
                metrics=metrics,
                overview=overview,
                footer="Made by skgradnorm (language-assisted image clustering with GradNorm). "
                "Nouns: the selected nouns nearest to each cluster's mean text counterpart. "
                "Thumbnails: the members nearest to the cluster centre first; each cluster's "
                "page shows them all.",
            )
            files["report.html"] = staged.add(out_dir / "report.html", page.encode("utf-8"))
            staged.commit()
    except BaseException:
        if created_pages_dir:  # an empty clusters/ would read as results in the next run
            with contextlib.suppress(OSError):
                pages_dir.rmdir()
        raise

    # Only now that the new results are in place: remove the stale ones.
    written = set(files[CLUSTER_PAGES])
    for stale in _cluster_page_files(out_dir):
        if stale not in written and stale.is_file() and not stale.is_symlink():
            stale.unlink()
    metrics_path = out_dir / "metrics.json"
    if metrics is None and metrics_path.is_file() and not metrics_path.is_symlink():
        metrics_path.unlink()
    if failures:
        listed = "; ".join(f"{name}: {reason}" for name, reason in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        warnings.warn(
            f"{len(failures)} thumbnail(s) could not be made and show a placeholder: "
            f"{listed}{more}",
            UserWarning,
            stacklevel=2,
        )
    return {"files": files, "clusters": clusters, "metrics": metrics}
