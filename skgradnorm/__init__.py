"""skgradnorm: language-assisted image clustering (GradNorm, ICCV 2025) as scikit-learn estimators.

The estimators work on embeddings (numeric arrays) made by a CLIP model:

- :class:`GradNormNounSelector` keeps the nouns of a bank that are close to the images and
  retrieves a text counterpart for each image;
- :class:`LanguageAssistedClusterer` clusters images joined with their text counterparts;
- :class:`MutualDistillationClusterer` trains TAC's two cluster heads (one on the images,
  one on their text counterparts) by cross-modal mutual distillation;
- :class:`SphericalKMeans` is the spherical k-means both use (and the image-only baseline);
- :func:`gradnorm_scores` is the scoring function itself;
- :class:`CLIPEncoder` embeds images, texts and nouns with an open_clip model (loaded
  lazily), so that the estimators also take raw images.

:mod:`skgradnorm.metrics` adds clustering accuracy and :mod:`skgradnorm.datasets` synthetic
CLIP-like worlds with a known answer.
"""

from ._clusterer import LanguageAssistedClusterer
from ._encoder import CLIPEncoder
from ._gradnorm import gradnorm_scores
from ._mutual_distillation import MutualDistillationClusterer
from ._selector import GradNormNounSelector
from ._spherical_kmeans import SphericalKMeans
from ._version import __version__ as __version__

__all__ = [
    "CLIPEncoder",
    "GradNormNounSelector",
    "LanguageAssistedClusterer",
    "MutualDistillationClusterer",
    "SphericalKMeans",
    "gradnorm_scores",
]
