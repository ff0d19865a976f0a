"""Synthetic CLIP-like worlds with a known answer, for tests, documentation and demos.

Three generators, and :func:`world_statistics`, which says how a world's (or real
features') neighbourhoods look: :func:`make_planted_world` and :func:`make_long_tail_world`
build every class from sub-classes that are islands in the image space;
:func:`make_calibrated_world` builds classes whose sub-classes overlap and that stay
connected in the nearest-neighbour graph, with neighbour purities like real CLIP features.
"""

from ._calibrated import make_calibrated_world
from ._planted import make_long_tail_world, make_planted_world
from ._statistics import world_statistics

__all__ = [
    "make_calibrated_world",
    "make_long_tail_world",
    "make_planted_world",
    "world_statistics",
]
