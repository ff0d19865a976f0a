"""What the report says and shows: cluster summaries, and the HTML pages that render them.

- :func:`summarize_clusters` describes each cluster of a fitted
  :class:`~skgradnorm.LanguageAssistedClusterer`: its size, the selected nouns nearest to
  its mean text counterpart (with their definitions, when known) and its members, most
  central first;
- :func:`render_report_html` renders the main page: the overview (cluster sizes, a map of
  the collection, and with known classes the confusion matrix), then each cluster with its
  class mix and a preview of its thumbnails, linked to its own page;
- :func:`render_cluster_page` renders one cluster's page with all its thumbnails.

Every page stands alone: thumbnails are ``data:`` URIs, the stylesheet
``templates/report.css`` is inlined, charts are inline SVG (``_charts.py``), there are no
scripts, and links only lead to the other pages of the same folder. Writing the files is
``_outputs.py``'s job; the thumbnails are made in ``_thumbnails.py``.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from .._utils._validation import l2_normalize_rows
from ._charts import class_mix_bar, cluster_colours, confusion_table, e, map_svg, sizes_svg

__all__ = [
    "cluster_page_name",
    "render_cluster_page",
    "render_report_html",
    "summarize_clusters",
]


@functools.lru_cache(maxsize=1)
def _report_css() -> str:
    return (
        resources.files("skgradnorm")
        .joinpath("_reporting", "templates", "report.css")
        .read_text("utf-8")
    )


def unit_rows64(X):
    return l2_normalize_rows(np.asarray(X), name="rows", dtype=np.float64, zero="keep")


def text_part(selector, embeddings):
    """The text counterparts ``t`` of ``embeddings`` from a fitted selector.

    Inside a fitted clusterer the selector returns ``[u ; t]`` (``concatenate=True``);
    the text counterparts are its last ``n_features`` columns.
    """
    out = np.asarray(selector.transform(embeddings))
    d = np.asarray(embeddings).shape[1]
    return out[:, -d:] if out.shape[1] == 2 * d else out


def summarize_clusters(
    clusterer,
    embeddings,
    *,
    n_nouns=5,
    n_examples=12,
    text_counterparts=None,
    noun_definitions=None,
    return_members=False,
):
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
    noun_definitions : sequence of str or None, default=None
        One definition per row of the selector's noun bank (indexable by
        ``selector_.selected_indices_``); adds ``noun_definitions`` to each cluster.
    return_members : bool, default=False
        Add ``members``: every member, most central first.

    Returns
    -------
    clusters : list of dict
        One dict per cluster, in cluster order, with keys ``cluster`` (int), ``size``
        (int), ``nouns`` (list of str, best first), ``noun_cosines`` (list of float) and
        ``examples`` (list of int: indices of members, most central first); with
        ``noun_definitions``, also ``noun_definitions`` (list of str, aligned with
        ``nouns``); with ``return_members``, also ``members`` (list of int).

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
    U = unit_rows64(embeddings)
    T = unit_rows64(
        text_part(selector, embeddings) if text_counterparts is None else text_counterparts
    )
    Z = unit_rows64(np.hstack([U, T]))
    centres = getattr(clusterer, "cluster_centers_", None)
    if centres is None or np.shape(centres)[1] != Z.shape[1]:
        # A clusterer without centres in [u ; t] (trained heads): the members' mean.
        k = getattr(clusterer, "n_clusters_", getattr(clusterer, "n_clusters", None))
        k = int(labels.max()) + 1 if not isinstance(k, (int, np.integer)) else int(k)
        centres = np.zeros((k, Z.shape[1]))
        np.add.at(centres, labels, Z)
    centres = unit_rows64(centres)
    E = unit_rows64(selector.selected_embeddings_)
    names = list(selector.selected_nouns_)
    rows = np.asarray(selector.selected_indices_)
    if noun_definitions is not None and rows.size and len(noun_definitions) <= rows.max():
        raise ValueError(
            f"noun_definitions has {len(noun_definitions)} entries but the selector kept noun "
            f"row {int(rows.max())}; pass one definition per row of the noun bank."
        )
    clusters = []
    for k in range(centres.shape[0]):
        members = np.flatnonzero(labels == k)
        nouns, cosines, definitions = [], [], []
        if members.size:
            mean_text = T[members].mean(axis=0)
            mean_text /= max(np.linalg.norm(mean_text), np.finfo(np.float64).tiny)
            sims = E @ mean_text
            for i in np.argsort(-sims, kind="stable"):
                if names[i] not in nouns:
                    nouns.append(names[i])
                    cosines.append(round(float(sims[i]), 4))
                    if noun_definitions is not None:
                        definition = noun_definitions[int(rows[i])]
                        definitions.append("" if definition is None else str(definition))
                if len(nouns) == n_nouns:
                    break
        centrality = Z[members] @ centres[k]
        order = members[np.argsort(-centrality, kind="stable")]
        summary = {
            "cluster": int(k),
            "size": int(members.size),
            "nouns": nouns,
            "noun_cosines": cosines,
            "examples": [int(i) for i in order[:n_examples]],
        }
        if noun_definitions is not None:
            summary["noun_definitions"] = definitions
        if return_members:
            summary["members"] = [int(i) for i in order]
        clusters.append(summary)
    return clusters


def cluster_page_name(cluster, n_clusters, page=1) -> str:
    """The file name of a cluster's page, e.g. ``cluster-007.html`` (``cluster-007-2.html``
    for its second page); the number has at least 3 digits and as many as the largest."""
    width = max(3, len(str(max(int(n_clusters) - 1, 0))))
    suffix = "" if page == 1 else f"-{int(page)}"
    return f"cluster-{int(cluster):0{width}d}{suffix}.html"


def _head(title) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_report_css()}</style>",
        "</head><body>",
    ]


def _label(c) -> str:
    return f"{c['cluster']}: {c['nouns'][0]}" if c["nouns"] else f"{c['cluster']}"


def _nouns_html(c) -> list[str]:
    """The noun chips (definitions as tooltips) and the definitions as small lines."""
    if not c["nouns"]:
        return []
    definitions = c.get("noun_definitions") or [""] * len(c["nouns"])
    chips = []
    for i, (noun, definition) in enumerate(zip(c["nouns"], definitions, strict=False)):
        tip = f' title="{e(definition)}"' if definition else ""
        chips.append(f'<span class="noun{" top" if i == 0 else ""}"{tip}>{e(noun)}</span>')
    out = ['<div class="nouns">' + "".join(chips) + "</div>"]
    lines = [
        f"<li><b>{e(noun)}</b>: {e(definition)}</li>"
        for noun, definition in zip(c["nouns"], definitions, strict=False)
        if definition
    ]
    if lines:
        out.append('<ul class="defs">' + "".join(lines) + "</ul>")
    return out


def _grid(thumbs, *, captions_from_tooltip=False) -> list[str]:
    out = ['<div class="grid">']
    for uri, caption, tooltip in thumbs:
        if not str(uri).startswith("data:image/"):
            raise ValueError(f"thumbnails must be data:image/ URIs; got {str(uri)[:40]!r}")
        if not caption and captions_from_tooltip:
            caption = str(tooltip).replace("\\", "/").rsplit("/", 1)[-1]
        cap = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
        out.append(
            f'<figure title="{e(tooltip)}"><img src="{e(uri)}" '
            f'alt="{e(caption or tooltip)}" width="96" height="96">{cap}</figure>'
        )
    out.append("</div>")
    return out


def _class_index(classes):
    return {name: i for i, name in enumerate(classes)} if classes else None


def _overview(ordered, overview, colours) -> list[str]:
    """The sizes chart, the map and the confusion matrix."""
    out = ['<div class="overview">']
    table = overview.get("classes")
    sizes = [(c["cluster"], _label(c), int(c["size"]), c.get("page", "")) for c in ordered]
    out.append(
        '<div class="panel"><h2>Cluster sizes</h2>'
        + sizes_svg(sizes, colours=colours)
        + '<p class="note">Largest first; a bar opens its cluster.</p></div>'
    )
    cmap = overview.get("map")
    if cmap is not None:
        groups = {
            c["cluster"]: (f"{_label(c)} ({c['size']} images)", c.get("page", "")) for c in ordered
        }
        shown, total = len(cmap["labels"]), int(cmap["n_total"])
        method = {"pca": "PCA", "tsne": "t-SNE"}[cmap["method"]]
        matched = "; a cluster matched to a class has its colour" if table is not None else ""
        sample = (
            f"{shown} of {total} images (a random sample)"
            if shown < total
            else f"all {total} images"
        )
        out.append(
            '<div class="panel"><h2>Map of the collection</h2>'
            + map_svg(cmap["coords"], cmap["labels"], groups, note=f" ({method})", colours=colours)
            + f'<p class="note">{e(method)} of the clustering space (image and text '
            f"counterpart), {e(sample)}; colour: cluster (as in the bars{matched}). "
            "Points of a cluster open its page.</p></div>"
        )
    for title, svg, note in overview.get("charts", ()):
        out.append(
            f'<div class="panel"><h2>{e(title)}</h2>{svg}<p class="note">{e(note)}</p></div>'
        )
    out.append("</div>")
    if table is not None:
        heads = {c["cluster"]: (str(c["cluster"]), _label(c), c.get("page", "")) for c in ordered}
        out.append(
            '<div class="panel wide"><h2>Classes against clusters</h2>'
            + confusion_table(table, heads=heads)
            + '<p class="note">Rows: known classes; columns: clusters, each under the class '
            "the Hungarian matching gives it (outlined cells; the matching that defines ACC), "
            "unmatched clusters last. Shade: share of the class in the cluster.</p></div>"
        )
    return out


def render_report_html(
    clusters,
    *,
    title="skgradnorm clusters",
    meta_lines=(),
    metrics=None,
    footer=None,
    overview=None,
):
    """The main HTML page: the overview, then each cluster with a preview of thumbnails.

    Every string is HTML-escaped. The page has inline CSS, no scripts and no links outside
    its folder (anchors on the page, and the cluster pages given in ``page``); thumbnails
    must be ``data:`` URIs.

    Parameters
    ----------
    clusters : list of dict
        Per cluster, as from :func:`summarize_clusters`, plus ``thumbnails``: a list of
        ``(data_uri, caption, tooltip)`` for the examples to show (``caption`` may be
        ``""``); optionally ``page`` (relative link to the cluster's own page) and
        ``class_mix`` (list of ``(class, count)``, largest first). Shown largest cluster
        first.
    title : str
        The page title.
    meta_lines : sequence of str
        Lines under the title (number of images, model, ...).
    metrics : dict or None
        ``{"ACC": ..., "NMI": ..., "ARI": ...}`` to show, if known.
    footer : str or None
        A closing line.
    overview : dict or None
        Draws the overview: the cluster sizes always; ``map``: ``{"coords": (m, 2),
        "labels": (m,), "method": "pca" or "tsne", "n_total": int}`` for the map;
        ``classes``: :func:`skgradnorm._reporting._report_data.class_table` for the confusion matrix
        and the class colours; ``charts``: extra panels ``(title, svg, note)``.

    Returns
    -------
    str
        The HTML document.
    """
    n_total = sum(int(c["size"]) for c in clusters) or 1
    ordered = sorted(clusters, key=lambda c: (-int(c["size"]), int(c["cluster"])))
    table = (overview or {}).get("classes")
    class_index = _class_index(table["classes"]) if table is not None else None
    colours = cluster_colours(len(clusters), table)
    out = _head(title)
    out.append(f"<header><h1>{e(title)}</h1>")
    out += [f'<p class="meta">{e(line)}</p>' for line in meta_lines]
    if metrics:
        out.append('<div class="metrics">')
        for key in ("ACC", "NMI", "ARI"):
            if key in metrics:
                value = f"{float(metrics[key]):.3f}"
                out.append(f'<div class="metric"><span>{e(key)}</span><b>{value}</b></div>')
        out.append("</div>")
    out.append("</header>")
    if overview is not None:
        out += _overview(ordered, overview, colours)
    out.append('<nav aria-label="clusters">')
    for c in ordered:
        out.append(f'<a href="#cluster-{int(c["cluster"])}">{e(_label(c))} ({int(c["size"])})</a>')
    out.append("</nav><main>")
    for c in ordered:
        k, size = int(c["cluster"]), int(c["size"])
        share = size / n_total
        page = c.get("page")
        name = f'<a href="{e(page)}">Cluster {k}</a>' if page else f"Cluster {k}"
        out.append(f'<section id="cluster-{k}">')
        out.append(
            f'<div class="head"><h2>{name}</h2>'
            f'<span class="size">{size} image{"s" if size != 1 else ""} ({share:.0%})</span></div>'
        )
        bar = f"width:{100 * share:.1f}%;background:{colours.get(k, '#4a6cd4')}"
        out.append(f'<div class="bar"><div style="{bar}"></div></div>')
        out += _nouns_html(c)
        if c.get("class_mix") and class_index is not None:
            out.append(class_mix_bar(c["class_mix"], class_index=class_index))
        thumbs = c.get("thumbnails", [])
        if thumbs:
            out += _grid(thumbs)
            if size > len(thumbs):
                link = f': <a href="{e(page)}">see all {size}</a>' if page else ""
                out.append(f'<p class="more">and {size - len(thumbs)} more{link}</p>')
            elif page:
                out.append(f'<p class="more"><a href="{e(page)}">cluster page</a></p>')
        elif size == 0:
            out.append('<p class="empty">empty cluster</p>')
        out.append("</section>")
    out.append("</main>")
    if footer:
        out.append(f"<footer>{e(footer)}</footer>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_cluster_page(
    cluster, thumbnails, *, title, back="../report.html", pages=(), page=1, classes=None
):
    """One cluster's own page: its nouns, class mix and thumbnails (one page of them).

    Parameters
    ----------
    cluster : dict
        As from :func:`summarize_clusters` (``class_mix`` optional).
    thumbnails : list of (str, str, str)
        ``(data_uri, caption, tooltip)`` of the members on this page, most central first;
        members without a caption show their file name.
    title : str
        The report's title.
    back : str
        Relative link to the main page.
    pages : sequence of str
        File names of all the pages of this cluster (when split), in order.
    page : int
        This page's number (from 1).
    classes : list of str or None
        All the known classes (for the class-mix colours).

    Returns
    -------
    str
        The HTML document.
    """
    k, size = int(cluster["cluster"]), int(cluster["size"])
    heading = f"Cluster {k}" + (f": {cluster['nouns'][0]}" if cluster["nouns"] else "")
    out = _head(f"{heading} | {title}")
    out.append(f'<header><p class="back"><a href="{e(back)}">All clusters</a> | {e(title)}</p>')
    out.append(f"<h1>{e(heading)}</h1>")
    shown = ""
    if len(pages) > 1:
        shown = f"; this page: {len(thumbnails)} of them (page {page} of {len(pages)})"
    out.append(
        f'<p class="meta">{size} image{"s" if size != 1 else ""}, most central first{shown}.</p>'
    )
    out.append('</header><main><section class="page">')
    out += _nouns_html(cluster)
    if cluster.get("class_mix") and classes:
        out.append(class_mix_bar(cluster["class_mix"], class_index=_class_index(classes)))
    if len(pages) > 1:
        links = [
            f"<b>{j}</b>" if j == page else f'<a href="{e(name)}">{j}</a>'
            for j, name in enumerate(pages, start=1)
        ]
        out.append(f'<nav class="pages" aria-label="pages">Pages: {" ".join(links)}</nav>')
    if thumbnails:
        out += _grid(thumbnails, captions_from_tooltip=True)
    else:
        out.append('<p class="empty">empty cluster</p>')
    out.append("</section></main></body></html>")
    return "\n".join(out) + "\n"
