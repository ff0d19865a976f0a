"""The report's charts as inline SVG and HTML: no scripts, no external URLs, no matplotlib.

The cluster sizes, the collection map, the class mixes, the confusion table, and the bar
chart of a label-free criterion against each setting or each K (:func:`criterion_chart_svg`).

Each function returns a fragment of HTML. Every text is escaped here; links are the
relative ``href`` values given by the caller (pages of the same report folder). Inline SVG
in HTML needs no ``xmlns`` attribute, so the fragments hold no URL at all.
"""

from __future__ import annotations

import colorsys
import html

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._formats import display_text

__all__ = [
    "bar_chart_svg",
    "class_mix_bar",
    "cluster_colours",
    "colour",
    "confusion_table",
    "criterion_chart_svg",
    "map_svg",
    "sizes_svg",
]

# Ten well-separated colours (hand-picked; a colour-blind-aware categorical palette), then
# golden-angle hues for more clusters.
_PALETTE = (
    "#4a6cd4",
    "#e07b39",
    "#2f9e73",
    "#d1455b",
    "#8c5fc7",
    "#c9a000",
    "#2b9fc4",
    "#b35c8f",
    "#6b8e23",
    "#7a7f8c",
)


def e(value) -> str:
    """``value`` as escaped HTML text (also valid in attributes)."""
    return html.escape(display_text(str(value)), quote=True)


def colour(i: int) -> str:
    """The colour of category ``i`` (a cluster or a class), as ``#rrggbb``."""
    if i < len(_PALETTE):
        return _PALETTE[i]
    h = (0.61803398875 * i) % 1.0
    r, g, b = colorsys.hls_to_rgb(h, 0.5, 0.55)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def cluster_colours(n_clusters, table=None) -> dict:
    """The colour of each cluster: with known classes (``table`` from
    :func:`skgradnorm._reporting._report_data.class_table`) a matched cluster takes its class's
    colour, so that the map, the bars and the class mixes agree; the others follow."""
    if table is None:
        return {k: colour(k) for k in range(n_clusters)}
    n_classes = len(table["classes"])
    out = {k: colour(i) for k, i in table["matched"].items()}
    rest = [k for k in table["cluster_order"] if k not in out]
    out.update({k: colour(n_classes + j) for j, k in enumerate(rest)})
    return out


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def sizes_svg(items, *, width=520, colours=None) -> str:
    """Horizontal bars, one per cluster: ``items`` is ``[(cluster, label, size, href)]``.

    ``colours`` maps a cluster to its colour (default: :func:`colour` of its number).
    """
    colours = colours or {}
    row, top, label_w, count_w = 18, 4, 190, 60
    height = top + row * len(items) + 4
    largest = max([size for _, _, size, _ in items] + [1])
    bar_w = width - label_w - count_w
    out = [
        f'<svg class="chart sizes" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="cluster sizes">'
    ]
    for j, (k, label, size, href) in enumerate(items):
        y = top + j * row
        w = max(bar_w * size / largest, 1.0 if size else 0.0)
        out.append(
            f'<a href="{e(href)}"><title>{e(label)}: {size} images</title>'
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{e(_short(label, 28))}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="12" rx="2" '
            f'fill="{colours.get(k, colour(k))}"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 12}">{size}</text></a>'
        )
    out.append("</svg>")
    return "".join(out)


def map_svg(coords, labels, groups, *, size=420, note="", colours=None) -> str:
    """A scatter of ``coords`` coloured by cluster.

    ``labels[i]`` is the cluster of point ``i``; ``groups`` maps a cluster to
    ``(title, href)``; ``colours`` a cluster to its colour. The points of one cluster form
    one link to its page.
    """
    colours = colours or {}
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels)
    pad = 8.0
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = float(max((hi - lo).max(), 1e-12))
    xy = pad + (coords - lo) / span * (size - 2 * pad)
    # Centre the shorter side.
    xy += ((size - 2 * pad) - (hi - lo) / span * (size - 2 * pad)) / 2
    r = 3.0 if len(coords) <= 1000 else 2.0
    out = [
        f'<svg class="chart map" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" aria-label="map of the collection{e(note)}">'
        f'<rect width="{size}" height="{size}" fill="#fafbfd"/>'
    ]
    for k in sorted(groups):
        pts = xy[labels == k]
        if not len(pts):
            continue
        title, href = groups[k]
        circles = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}"/>' for x, y in pts)
        out.append(
            f'<a href="{e(href)}"><g fill="{colours.get(k, colour(k))}" fill-opacity="0.75">'
            f"<title>{e(title)}</title>{circles}</g></a>"
        )
    out.append("</svg>")
    return "".join(out)


def class_mix_bar(mix, *, class_index) -> str:
    """One stacked bar of a cluster's classes: ``mix`` is ``[(class, count)]``, largest first.

    ``class_index`` maps a class to its colour index. Returns the bar and a line naming
    the three largest shares.
    """
    total = sum(count for _, count in mix)
    if not total:
        return ""
    out = [
        '<svg class="mix" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        'aria-label="class mix">'
    ]
    x = 0.0
    for name, count in mix:
        w = 100.0 * count / total
        out.append(
            f'<rect x="{x:.3f}" width="{w:.3f}" height="8" fill="{colour(class_index[name])}">'
            f"<title>{e(name)}: {count} ({count / total:.0%})</title></rect>"
        )
        x += w
    out.append("</svg>")
    words = [
        f'<span class="swatch" style="background:{colour(class_index[name])}"></span>'
        f"{e(name)} {count / total:.0%}"
        for name, count in mix[:3]
    ]
    more = f" and {len(mix) - 3} more classes" if len(mix) > 3 else ""
    return "".join(out) + f'<p class="mixline">Classes: {" · ".join(words)}{more}</p>'


def confusion_table(table, *, heads) -> str:
    """The confusion matrix as an HTML table shaded by share of each class.

    ``table`` is :func:`skgradnorm._reporting._report_data.class_table`'s result; ``heads`` maps a
    cluster to ``(label, title, href)`` for its column head.
    """
    counts = np.asarray(table["counts"])
    order = table["cluster_order"]
    row_totals = counts.sum(axis=1)
    out = ['<div class="scroll"><table class="confusion">', "<thead><tr><th>class \\ cluster</th>"]
    for k in order:
        label, title, href = heads[k]
        out.append(f'<th><a href="{e(href)}" title="{e(title)}">{e(label)}</a></th>')
    out.append("<th>total</th></tr></thead><tbody>")
    for i, name in enumerate(table["classes"]):
        out.append(f'<tr><th class="cls">{e(name)}</th>')
        for k in order:
            n = int(counts[i, k])
            share = n / row_totals[i] if row_totals[i] else 0.0
            style = f"background:rgba(74,108,212,{share:.3f})"
            if share > 0.55:
                style += ";color:#fff"
            matched = ' class="match"' if table["matched"].get(k) == i else ""
            out.append(
                f'<td{matched} style="{style}" title="{e(name)} in cluster {k}: {n} '
                f'({share:.0%} of the class)">{n if n else ""}</td>'
            )
        out.append(f'<td class="total">{int(row_totals[i])}</td></tr>')
    out.append("</tbody><tfoot><tr><th>total</th>")
    out += [f'<td class="total">{int(counts[:, k].sum())}</td>' for k in order]
    out.append(f'<td class="total">{int(counts.sum())}</td></tr></tfoot></table></div>')
    return "".join(out)


def bar_chart_svg(
    labels,
    values,
    *,
    chosen=None,
    title="",
    ylabel="criterion",
    width=640,
    height=300,
):
    """One bar per setting, the ``chosen`` one highlighted, as an ``<svg>`` string.

    Parameters
    ----------
    labels : sequence of str
        The settings (x axis), shown under the bars (rotated when there are many).
    values : sequence of float
        The criterion of each setting; NaN bars are left out.
    chosen : int or None
        Index of the bar to highlight (the chosen setting).
    title, ylabel : str
        Chart title and y-axis label (escaped).
    width, height : int
        Size in pixels.

    Returns
    -------
    str
        A self-contained ``<svg>`` element (no scripts, links or external resources).

    Examples
    --------
    >>> svg = bar_chart_svg(["a", "b"], [0.5, 0.9], chosen=1, title="t")
    >>> svg.startswith("<svg") and svg.count("<rect") == 3
    True
    """
    labels = [str(s) for s in labels]
    values = np.asarray(values, dtype=float)
    if len(labels) != values.size or values.size == 0:
        raise ValueError(
            f"bar_chart_svg needs one label per value and at least one value; got "
            f"{len(labels)} labels and {values.size} values."
        )
    finite = values[np.isfinite(values)]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(float(finite.max()), lo + 1e-12) if finite.size else 1.0
    rotate = len(labels) > 8 or max(len(s) for s in labels) > 10
    left, right, top = 56, 12, 28
    bottom = 110 if rotate else 36
    pw, ph = width - left - right, height - top - bottom
    step = pw / values.size
    bar_w = max(1.0, 0.8 * step)

    def y(v):
        return top + ph * (hi - v) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title or ylabel)}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13">{e(title)}</text>',
        f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})">{e(ylabel)}</text>',
        f'<line x1="{left}" y1="{y(lo):.1f}" x2="{left + pw}" y2="{y(lo):.1f}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>',
    ]
    for tick in np.linspace(lo, hi, 5):
        parts.append(
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3g}</text>'
        )
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = left + i * step + (step - bar_w) / 2
        cx = x + bar_w / 2
        if np.isfinite(v):
            top_y, base = sorted((y(v), y(max(lo, 0.0))))
            fill = colour(3) if i == chosen else colour(0)
            parts.append(
                f'<rect x="{x:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(base - top_y, 0.5):.1f}" fill="{fill}">'
                f"<title>{e(label)}: {v:.4g}</title></rect>"
            )
        ly = top + ph + 12
        if rotate:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="end" '
                f'transform="rotate(-60 {cx:.1f} {ly:.1f})">{e(label)}</text>'
            )
        else:
            parts.append(f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle">{e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def criterion_chart_svg(result=None, *, estimator=None, title=None, width=640, height=300):
    """The criterion against each setting (a :func:`tune` result) or each K, as SVG.

    Parameters
    ----------
    result : Bunch or None
        A :func:`tune` result: one bar per setting of ``result.table_``, the chosen one
        highlighted.
    estimator : fitted clusterer or None
        Instead of ``result``: an estimator fitted with ``n_clusters="auto"``; one bar
        per K of ``n_clusters_range_`` (its ``n_clusters_scores_``), ``n_clusters_``
        highlighted.
    title : str or None
        Chart title (None: a default that says what was chosen).
    width, height : int
        Size in pixels.

    Returns
    -------
    str
        A self-contained ``<svg>`` element for an HTML page: no scripts, no links, no
        external resources, no matplotlib.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm import SphericalKMeans
    >>> from skgradnorm._reporting._charts import criterion_chart_svg
    >>> X = np.random.RandomState(0).normal(size=(60, 4))
    >>> km = SphericalKMeans("auto", n_clusters_range=range(2, 5), n_init=1,
    ...                      random_state=0).fit(X)
    >>> criterion_chart_svg(estimator=km).startswith("<svg")
    True
    """
    if (result is None) == (estimator is None):
        raise ValueError(
            "criterion_chart_svg needs exactly one of result= (from tune) or estimator= "
            '(fitted with n_clusters="auto").'
        )
    if result is not None:
        labels = [row["label"] for row in result.table_]
        values = [row["criterion"] for row in result.table_]
        chosen = result.best_index_
        default_title = f"{result.criterion} per setting; chosen: {labels[chosen]}"
        ylabel = result.criterion
    else:
        check_is_fitted(estimator)
        if not hasattr(estimator, "n_clusters_scores_"):
            raise ValueError(
                f"{type(estimator).__name__} was not fitted with n_clusters='auto'; fit it "
                "with n_clusters='auto' to chart the criterion per K, or pass a tune result."
            )
        ks = list(estimator.n_clusters_range_)
        labels = [str(k) for k in ks]
        values = np.asarray(estimator.n_clusters_scores_, dtype=float)
        chosen = ks.index(estimator.n_clusters_)
        criterion = getattr(estimator, "n_clusters_criterion_", "stability")
        ylabel = {"stability": "stability (ARI)", "bic": "-BIC above the lowest K"}.get(
            criterion, criterion
        )
        if criterion == "bic":  # thousands of units apart from 0: chart the differences
            values = values - np.nanmin(values)
        default_title = f"{criterion} per K; chosen: K={estimator.n_clusters_}"
    return bar_chart_svg(
        labels,
        values,
        chosen=chosen,
        title=default_title if title is None else title,
        ylabel=ylabel,
        width=width,
        height=height,
    )
