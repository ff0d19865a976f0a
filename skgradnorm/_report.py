"""What the report says and shows: cluster summaries, and the HTML page that renders them.

- :func:`summarize_clusters` describes each cluster of a fitted
  :class:`~skgradnorm.LanguageAssistedClusterer`: its size, the selected nouns nearest to
  its mean text counterpart and its most central members;
- :func:`render_report_html` renders one self-contained HTML page (thumbnails embedded as
  ``data:`` URIs, the stylesheet ``templates/report.css`` inlined, no scripts, nothing
  fetched from the network).

Writing the files is ``_outputs.py``'s job; the thumbnails are made in ``_thumbnails.py``.
"""

from __future__ import annotations

import functools
import html
from importlib import resources

import numpy as np

from ._validation import l2_normalize_rows

__all__ = ["render_report_html", "summarize_clusters"]


@functools.lru_cache(maxsize=1)
def _report_css() -> str:
    return resources.files("skgradnorm").joinpath("templates", "report.css").read_text("utf-8")


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
        f"<style>{_report_css()}</style>",
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
