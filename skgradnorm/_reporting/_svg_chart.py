"""A dependency-free bar chart as an inline SVG string (for HTML reports).

The command line's report shows a label-free criterion against each setting tried; this
writes that chart without matplotlib and without any external resource: plain SVG
elements, escaped text, fixed sizes, so that the string can be pasted into an HTML page.
"""

from __future__ import annotations

from html import escape

import numpy as np

__all__ = ["bar_chart_svg"]


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
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or ylabel)}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13">'
        f"{escape(title)}</text>",
        f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(ylabel)}</text>',
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
            fill = "#d62728" if i == chosen else "#4c78a8"
            parts.append(
                f'<rect x="{x:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(base - top_y, 0.5):.1f}" fill="{fill}">'
                f"<title>{escape(label)}: {v:.4g}</title></rect>"
            )
        ly = top + ph + 12
        if rotate:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="end" '
                f'transform="rotate(-60 {cx:.1f} {ly:.1f})">{escape(label)}</text>'
            )
        else:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
