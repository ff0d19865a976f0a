"""skgradnorm: language-assisted image clustering (GradNorm, ICCV 2025) as scikit-learn estimators.

The estimators work on embeddings (numeric arrays) made by a CLIP model:

- :class:`GradNormNounSelector` keeps the nouns of a bank that are close to the images and
  retrieves a text counterpart for each image;
- :class:`LanguageAssistedClusterer` clusters images joined with their text counterparts;
- :class:`MutualDistillationClusterer` trains TAC's two cluster heads (one on the images,
  one on their text counterparts) by cross-modal mutual distillation;
- :class:`SphericalKMeans` (and :func:`spherical_kmeans`) is the spherical k-means both use,
  and the image-only baseline;
- :func:`gradnorm_scores` is the scoring function itself;
- :class:`CLIPEncoder` embeds images, texts and nouns with an open_clip model (loaded
  lazily), so that the estimators also take raw images.

:mod:`skgradnorm.metrics` adds clustering accuracy and a label-free criterion,
:mod:`skgradnorm.tuning` label-free tuning, :mod:`skgradnorm.datasets` synthetic
CLIP-like worlds with a known answer, :mod:`skgradnorm.vocabulary` the WordNet noun bank and
:mod:`skgradnorm.exceptions` the package's errors and warnings.

``import skgradnorm`` is light: torch, scikit-learn and open_clip are imported when a name
that needs them is first used (PEP 562 module ``__getattr__``), so that the command line
answers ``--help`` at once.

The method: B. Peng, J. Lu, Y. Zhang, Z. Fang, "On the Provable Importance of Gradients for
Language-Assisted Image Clustering", ICCV 2025, arXiv:2510.16335.
"""

import importlib

from ._version import __version__ as __version__

#: Public name -> the private module that defines it (imported on first access).
_LAZY = {
    "CLIPEncoder": "._clip._encoder",
    "GradNormNounSelector": "._selector",
    "LanguageAssistedClusterer": "._clusterer",
    "MutualDistillationClusterer": "._mutual_distillation",
    "SphericalKMeans": "._spherical_kmeans",
    "gradnorm_scores": "._gradnorm",
    "spherical_kmeans": "._cluster._kmeans",
}
_SUBMODULES = ("datasets", "exceptions", "metrics", "model_selection", "tuning", "vocabulary")

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'skgradnorm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
