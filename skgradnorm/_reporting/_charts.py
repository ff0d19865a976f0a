"""The report's charts as inline SVG and HTML: no scripts, no external URLs, no matplotlib.

Each function returns a fragment of HTML. Every text is escaped here; links are the
relative ``href`` values given by the caller (pages of the same report folder). Inline SVG
in HTML needs no ``xmlns`` attribute, so the fragments hold no URL at all.
"""

from __future__ import annotations

import colorsys
import html

import numpy as np

from ._formats import display_text

__all__ = [
    "class_mix_bar",
    "cluster_colours",
    "colour",
    "confusion_table",
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
    :func:`skgradnorm._report_data.class_table`) a matched cluster takes its class's
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

    ``table`` is :func:`skgradnorm._report_data.class_table`'s result; ``heads`` maps a
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
