"""The outputs of ``skgradnorm cluster`` (and ``demo``): CSV and JSON files and an HTML report.

Plain functions, usable without the command line:

- :func:`summarize_clusters` describes each cluster of a fitted
  :class:`~skgradnorm.LanguageAssistedClusterer`: its size, the selected nouns nearest to
  its mean text counterpart and its most central members;
- :func:`skgradnorm.metrics.clustering_metrics` computes ACC, NMI and ARI against known classes;
- :func:`render_report_html` renders one self-contained HTML page (thumbnails embedded as
  ``data:`` URIs, inline CSS, no scripts, nothing fetched from the network);
- :func:`write_outputs` writes ``assignments.csv``, ``selected_nouns.csv``,
  ``clusters.json``, ``report.html`` and, with known classes, ``metrics.json``.

Thumbnails come from :func:`image_thumbnail` (a downscaled image file) or, for data
without images, :func:`swatch_thumbnail` (a generated colour tile).
"""

from __future__ import annotations

import base64
import colorsys
import csv
import html
import io
import json
import os
from pathlib import Path

import numpy as np

from ._validation import l2_normalize_rows
from .metrics import clustering_metrics

__all__ = [
    "OUTPUT_FILES",
    "existing_outputs",
    "image_thumbnail",
    "render_report_html",
    "summarize_clusters",
    "swatch_thumbnail",
    "write_outputs",
]

#: Every file :func:`write_outputs` may write (``metrics.json`` only with known classes).
OUTPUT_FILES = (
    "assignments.csv",
    "selected_nouns.csv",
    "clusters.json",
    "report.html",
    "metrics.json",
)

THUMBNAIL_SIZE = 96


def existing_outputs(out_dir) -> list[str]:
    """Names of the output files (:data:`OUTPUT_FILES`) already present in ``out_dir``."""
    out_dir = Path(out_dir)
    return [name for name in OUTPUT_FILES if (out_dir / name).exists()]


# --------------------------------------------------------------------------- analysis


def _normalize_rows(X):
    return l2_normalize_rows(np.asarray(X), name="rows", dtype=np.float64, zero="keep")


def _text_part(selector, embeddings):
    """The text counterparts ``t`` of ``embeddings`` from a fitted selector.

    Inside a fitted clusterer the selector returns ``[u ; t]`` (``concatenate=True``);
    the text counterparts are its last ``n_features`` columns.
    """
    out = np.asarray(selector.transform(embeddings))
    d = np.asarray(embeddings).shape[1]
    return out[:, -d:] if out.shape[1] == 2 * d else out


def summarize_clusters(clusterer, embeddings, *, n_nouns=5, n_examples=12, text_counterparts=None):
    """Describe each cluster of a fitted :class:`~skgradnorm.LanguageAssistedClusterer`.

    A cluster's describing nouns are the selected nouns nearest (by cosine) to the mean of
    its members' text counterparts (the selector's ``transform``); its examples are the
    members nearest to its centre in the clustering space ``[u ; t]``.

    Parameters
    ----------
    clusterer : LanguageAssistedClusterer
        Fitted on ``embeddings``.
    embeddings : ndarray of shape (n_samples, n_features)
        The image embeddings it was fitted on.
    n_nouns : int, default=5
        Describing nouns per cluster (distinct names).
    n_examples : int, default=12
        Example members per cluster.
    text_counterparts : ndarray of shape (n_samples, n_features), default=None
        The text counterparts ``t`` of ``embeddings`` (the last ``n_features`` columns of
        ``clusterer.selector_.transform(embeddings)``), if already computed.

    Returns
    -------
    clusters : list of dict
        One dict per cluster, in cluster order, with keys ``cluster`` (int), ``size``
        (int), ``nouns`` (list of str, best first), ``noun_cosines`` (list of float) and
        ``examples`` (list of int: indices of members, most central first).

    Examples
    --------
    >>> from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    >>> from skgradnorm.datasets import make_planted_world
    >>> world = make_planted_world(n_samples=120, n_classes=3, random_state=0)
    >>> laic = LanguageAssistedClusterer(3, n_init=3, random_state=0, selector=
    ...     GradNormNounSelector(world.noun_embeddings, vocabulary=world.vocabulary,
    ...                          n_centers=9, random_state=0)).fit(world.data)
    >>> clusters = summarize_clusters(laic, world.data, n_nouns=2, n_examples=3)
    >>> sum(c["size"] for c in clusters), len(clusters[0]["nouns"]), len(clusters[0]["examples"])
    (120, 2, 3)
    """
    labels = np.asarray(clusterer.labels_)
    selector = clusterer.selector_
    U = _normalize_rows(embeddings)
    T = _normalize_rows(
        _text_part(selector, embeddings) if text_counterparts is None else text_counterparts
    )
    Z = _normalize_rows(np.hstack([U, T]))
    centres = _normalize_rows(clusterer.cluster_centers_)
    E = _normalize_rows(selector.selected_embeddings_)
    names = list(selector.selected_nouns_)
    clusters = []
    for k in range(centres.shape[0]):
        members = np.flatnonzero(labels == k)
        nouns, cosines = [], []
        if members.size:
            mean_text = T[members].mean(axis=0)
            mean_text /= max(np.linalg.norm(mean_text), np.finfo(np.float64).tiny)
            sims = E @ mean_text
            for i in np.argsort(-sims, kind="stable"):
                if names[i] not in nouns:
                    nouns.append(names[i])
                    cosines.append(round(float(sims[i]), 4))
                if len(nouns) == n_nouns:
                    break
        centrality = Z[members] @ centres[k]
        order = members[np.argsort(-centrality, kind="stable")]
        clusters.append(
            {
                "cluster": int(k),
                "size": int(members.size),
                "nouns": nouns,
                "noun_cosines": cosines,
                "examples": [int(i) for i in order[:n_examples]],
            }
        )
    return clusters


# --------------------------------------------------------------------------- thumbnails


def _data_uri(image, fmt="JPEG") -> str:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, format="JPEG", quality=85, optimize=True)
        mime = "image/jpeg"
    else:
        image.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_thumbnail(path, size=THUMBNAIL_SIZE) -> str:
    """A ``data:image/jpeg;base64,...`` URI of the image file at ``path``, at most ``size`` px.

    The image is turned upright (EXIF), put on white where transparent, converted to RGB
    and downscaled (never upscaled) to fit in ``size`` x ``size``.
    """
    from PIL import Image, ImageOps

    with Image.open(os.fspath(path)) as im:
        if im.format == "JPEG":
            im.draft("RGB", (2 * size, 2 * size))  # decode at a reduced scale: much faster
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "P", "PA"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        return _data_uri(im)


_SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross")


def swatch_thumbnail(hue, shape=0, pattern=0, size=THUMBNAIL_SIZE) -> str:
    """A generated ``data:image/png`` tile: a colour (``hue`` in [0, 1)) with a white shape.

    For data without images (the planted world of ``skgradnorm demo``): ``hue`` shows the
    class, ``shape`` (an int) the sub-class and ``pattern`` (an int) a nuisance such as the
    style, as faint stripes.

    Examples
    --------
    >>> swatch_thumbnail(0.5, shape=1, pattern=2).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image, ImageDraw

    r, g, b = colorsys.hsv_to_rgb(float(hue) % 1.0, 0.65, 0.85)
    base = (int(r * 255), int(g * 255), int(b * 255))
    im = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(im)
    # The nuisance: stripes in one of a few directions, a little darker than the tile.
    stripe = tuple(int(c * 0.82) for c in base)
    step = max(4, size // 8)
    direction = int(pattern) % 4
    for t in range(-size, 2 * size, step):
        if direction == 1:
            draw.line([(0, t), (size, t)], fill=stripe, width=2)
        elif direction == 2:
            draw.line([(t, 0), (t, size)], fill=stripe, width=2)
        elif direction == 3:
            draw.line([(t, 0), (t + size, size)], fill=stripe, width=2)
    # The sub-class: a white shape in the middle.
    m, c = size * 0.25, size / 2
    box = [m, m, size - m, size - m]
    kind = _SHAPES[int(shape) % len(_SHAPES)]
    white = (255, 255, 255)
    if kind == "circle":
        draw.ellipse(box, fill=white)
    elif kind == "square":
        draw.rectangle(box, fill=white)
    elif kind == "triangle":
        draw.polygon([(c, m), (size - m, size - m), (m, size - m)], fill=white)
    elif kind == "diamond":
        draw.polygon([(c, m), (size - m, c), (c, size - m), (m, c)], fill=white)
    elif kind == "ring":
        draw.ellipse(box, outline=white, width=max(3, size // 12))
    else:
        w = size // 10
        draw.rectangle([c - w, m, c + w, size - m], fill=white)
        draw.rectangle([m, c - w, size - m, c + w], fill=white)
    return _data_uri(im, fmt="PNG")


# --------------------------------------------------------------------------- HTML

_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;color:#1d2330;background:#f4f5f8}
h1{font-size:24px;margin:0 0 6px}
.meta{color:#596273;margin:0 0 4px}
.metrics{display:flex;gap:12px;margin:12px 0 4px}
.metric{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:6px 14px}
.metric b{display:block;font-size:20px}
.metric span{color:#596273;font-size:12px;letter-spacing:.05em}
nav{margin:14px 0 20px;display:flex;flex-wrap:wrap;gap:6px}
nav a{color:#1d2330;text-decoration:none;background:#fff;border:1px solid #dde1e8;
border-radius:14px;padding:2px 10px;font-size:13px}
nav a:hover{background:#e8ecf5}
section{background:#fff;border:1px solid #dde1e8;border-radius:10px;padding:14px 18px 16px;
margin:0 0 18px}
.head{display:flex;align-items:baseline;gap:14px;flex-wrap:wrap}
h2{font-size:17px;margin:0;white-space:nowrap}
.size{color:#596273;font-size:14px;white-space:nowrap}
.bar{height:6px;background:#e8ebf1;border-radius:3px;margin:8px 0 10px;overflow:hidden}
.bar div{height:100%;background:#4a6cd4}
.nouns{margin:0 0 12px;display:flex;flex-wrap:wrap;gap:6px}
.noun{background:#eef1f8;border-radius:6px;padding:2px 9px;font-size:14px}
.noun.top{background:#4a6cd4;color:#fff;font-weight:600;font-size:15px}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:96px}
figure img{display:block;width:96px;height:96px;object-fit:contain;background:#eceef2;
border-radius:4px}
figcaption{font-size:11px;color:#596273;text-align:center;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.more{color:#596273;font-size:13px;margin:8px 0 0}
.empty{color:#596273;font-style:italic}
footer{color:#8a92a1;font-size:12px;margin-top:24px}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def render_report_html(
    clusters, *, title="skgradnorm clusters", meta_lines=(), metrics=None, footer=None
):
    """One self-contained HTML page showing each cluster as a grid of thumbnails.

    Every string is HTML-escaped. The page has inline CSS, no scripts and no links outside
    itself (its index links to anchors on the page); thumbnails must be ``data:`` URIs.

    Parameters
    ----------
    clusters : list of dict
        Per cluster, as from :func:`summarize_clusters`, plus ``thumbnails``: a list of
        ``(data_uri, caption, tooltip)`` for the examples to show (``caption`` may be
        ``""``). Shown largest cluster first.
    title : str
        The page title.
    meta_lines : sequence of str
        Lines under the title (number of images, model, ...).
    metrics : dict or None
        ``{"ACC": ..., "NMI": ..., "ARI": ...}`` to show, if known.
    footer : str or None
        A closing line.

    Returns
    -------
    str
        The HTML document.
    """
    n_total = sum(int(c["size"]) for c in clusters) or 1
    ordered = sorted(clusters, key=lambda c: (-int(c["size"]), int(c["cluster"])))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<header><h1>{_e(title)}</h1>",
    ]
    out += [f'<p class="meta">{_e(line)}</p>' for line in meta_lines]
    if metrics:
        out.append('<div class="metrics">')
        for key in ("ACC", "NMI", "ARI"):
            if key in metrics:
                value = f"{float(metrics[key]):.3f}"
                out.append(f'<div class="metric"><span>{_e(key)}</span><b>{value}</b></div>')
        out.append("</div>")
    out.append("</header>")
    out.append('<nav aria-label="clusters">')
    for c in ordered:
        label = f"{c['cluster']}: {c['nouns'][0]}" if c["nouns"] else f"{c['cluster']}"
        out.append(f'<a href="#cluster-{int(c["cluster"])}">{_e(label)} ({int(c["size"])})</a>')
    out.append("</nav><main>")
    for c in ordered:
        k, size = int(c["cluster"]), int(c["size"])
        share = size / n_total
        out.append(f'<section id="cluster-{k}">')
        out.append(
            f'<div class="head"><h2>Cluster {k}</h2>'
            f'<span class="size">{size} image{"s" if size != 1 else ""} ({share:.0%})</span></div>'
        )
        out.append(f'<div class="bar"><div style="width:{100 * share:.1f}%"></div></div>')
        if c["nouns"]:
            chips = [
                f'<span class="noun{" top" if i == 0 else ""}">{_e(noun)}</span>'
                for i, noun in enumerate(c["nouns"])
            ]
            out.append('<div class="nouns">' + "".join(chips) + "</div>")
        thumbs = c.get("thumbnails", [])
        if thumbs:
            out.append('<div class="grid">')
            for uri, caption, tooltip in thumbs:
                if not str(uri).startswith("data:image/"):
                    raise ValueError(f"thumbnails must be data:image/ URIs; got {str(uri)[:40]!r}")
                cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
                out.append(
                    f'<figure title="{_e(tooltip)}"><img src="{_e(uri)}" '
                    f'alt="{_e(caption or tooltip)}" width="96" height="96">{cap}</figure>'
                )
            out.append("</div>")
            if size > len(thumbs):
                out.append(f'<p class="more">and {size - len(thumbs)} more</p>')
        elif size == 0:
            out.append('<p class="empty">empty cluster</p>')
        out.append("</section>")
    out.append("</main>")
    if footer:
        out.append(f"<footer>{_e(footer)}</footer>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files


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
