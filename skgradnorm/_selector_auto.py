"""The ``"auto"`` rules of :class:`~skgradnorm.GradNormNounSelector`'s settings, by strategy.

``n_centers="auto"`` and ``retrieval_temperature="auto"`` resolve at fit time (to the
fitted ``n_centers_`` and ``retrieval_temperature_``) by the rules here: GradNorm's
defaults for every strategy but ``"tac"``, whose rules are those of TAC's released scripts
(Li et al., "Image Clustering with External Guidance", ICML 2024, arXiv:2310.11989).
"""

from __future__ import annotations

import numpy as np

__all__ = ["auto_n_centers", "auto_retrieval_temperature"]

#: ``retrieval_temperature="auto"``: TAC's scripts retrieve at 0.005; the others at 0.008.
AUTO_RETRIEVAL_TEMPERATURE = {"tac": 0.005}
_DEFAULT_RETRIEVAL_TEMPERATURE = 0.008
#: TAC's scripts use about one image centre per 300 training images.
_TAC_IMAGES_PER_CENTER = 300


def auto_n_centers(n_samples: int, strategy: str = "gradnorm", n_clusters=None) -> int:
    """The ``n_centers="auto"`` rule, within ``[1, n_samples]``.

    ``strategy="tac"``: TAC's scripts (Li et al., ICML 2024): ``round(n_samples / 300)``
    centres, or ``3 * n_clusters`` when that is fewer than ``n_clusters`` (their DTD and
    UCF101 settings) and ``n_clusters`` is known. Every other strategy:
    ``round(sqrt(n_samples))``, a scale-free compromise between the GradNorm paper's
    settings: it gives 224 centres for the 50,000 training images of CIFAR-10/20 (paper: 250
    and 200), 71 for 5,000 images (STL-10's training split; paper: 30) and 1,132 for
    ImageNet-1K's 1,281,167 images (paper: 2,000). Set ``n_centers`` explicitly to
    reproduce the paper.
    """
    if strategy == "tac":
        n_centers = round(n_samples / _TAC_IMAGES_PER_CENTER)
        if n_clusters is not None and n_centers < n_clusters:
            n_centers = 3 * int(n_clusters)
    else:
        n_centers = round(np.sqrt(n_samples))
    return int(min(n_samples, max(1, n_centers)))


def auto_retrieval_temperature(strategy: str, value="auto") -> float:
    """``value`` as a float, or for ``"auto"`` the rule: 0.005 for ``"tac"`` (TAC's scripts),
    else 0.008 (within the GradNorm paper's 0.006 to 0.01)."""
    if value != "auto":
        return float(value)
    return AUTO_RETRIEVAL_TEMPERATURE.get(strategy, _DEFAULT_RETRIEVAL_TEMPERATURE)
