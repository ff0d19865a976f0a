"""The package's progress bars: one place that says how they look and how they measure.

Every long loop (images, nouns, texts, training epochs) shows at most one tqdm bar, made
here, so that all bars behave alike: shown only when the caller asked (``verbose``; the
command line asks only when stderr is a terminal), drawn in place, and with a rate and an
ETA that do not swing. Noun prompts are run shortest first (``_clip/_text.py`` sorts them
by token length), so the rate of the moment falls steadily within each block of prompts;
their bars show the average rate since the start (tqdm's ``smoothing=0``), which is what
the ETA of the rest of the work needs. Images cost the same each, and their bars use a
light exponential average.
"""

from __future__ import annotations

__all__ = ["AVERAGE_SINCE_START", "LIGHT_SMOOTHING", "progress_bar"]

#: tqdm's ``smoothing`` for work whose items are done in a sorted, uneven order.
AVERAGE_SINCE_START = 0.0
#: tqdm's ``smoothing`` for work of uniform items: a moving average over about 10 updates.
LIGHT_SMOOTHING = 0.1


def progress_bar(*, total, desc, unit, enabled, initial=0, smoothing=LIGHT_SMOOTHING):
    """A tqdm bar (``tqdm.auto``: a widget in notebooks), or a silent one if not ``enabled``.

    Parameters
    ----------
    total : int
        Items in all.
    desc, unit : str
        The bar's label and the unit of its rate.
    enabled : bool
        Draw the bar (a disabled bar still counts, silently).
    initial : int, default=0
        Items already done when the bar starts (e.g. found in a cache): shown as done, and
        left out of the rate.
    smoothing : float, default=LIGHT_SMOOTHING
        tqdm's exponential smoothing of the rate (0: the average since the start).
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not enabled,
        smoothing=smoothing,
        dynamic_ncols=True,
    )
