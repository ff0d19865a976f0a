"""What the two language-assisted clusterers share: their selector, and images as input.

:class:`~skgradnorm.LanguageAssistedClusterer` and
:class:`~skgradnorm.MutualDistillationClusterer` both fit a noun selector on the image
embeddings and use its text counterparts. The selector is set up here, once, with one
rule for the parameters a user can give twice.

Precedence: ``encoder``, ``vocabulary`` (and ``strategy`` for the heads) can be set on the
clusterer and on its ``selector``. The clusterer's value wins when it is not None; None
leaves the selector's own value. The clusterer's ``n_clusters``, when an int, is given to a
selector that has an ``n_clusters`` parameter (used by TAC's ``n_centers="auto"`` rule).
Neither estimator is modified: the selector is cloned.
"""

from __future__ import annotations

import numbers

from sklearn.base import clone

from ._selector import GradNormNounSelector
from ._utils._validation import validated_images

__all__ = ["LanguageClustererMixin"]


class LanguageClustererMixin:
    """Selector set-up and image validation for a clusterer with a ``selector`` parameter.

    A subclass sets ``_concatenate`` (the value given to the selector's ``concatenate``
    parameter, when it has one) and ``_passed_to_selector`` (its parameters that replace the
    selector's when not None, see the module docstring).
    """

    _concatenate = True
    _passed_to_selector = ("encoder", "vocabulary")

    def _make_selector(self):
        """The unfitted selector: a clone of ``selector`` (None: a default
        :class:`GradNormNounSelector` with this estimator's ``random_state`` and ``device``),
        with the clusterer's non-None shared parameters, ``concatenate`` and its int
        ``n_clusters`` set."""
        if self.selector is None:
            selector = GradNormNounSelector(random_state=self.random_state, device=self.device)
        else:
            selector = clone(self.selector)
        params = {
            name: getattr(self, name)
            for name in self._passed_to_selector
            if getattr(self, name) is not None
        }
        own = selector.get_params(deep=False)
        if "concatenate" in own:
            params["concatenate"] = self._concatenate
        k = getattr(self, "n_clusters", None)
        if "n_clusters" in own and isinstance(k, numbers.Integral) and not isinstance(k, bool):
            params["n_clusters"] = int(k)
        return selector.set_params(**params)

    def _images(self, X, selector, *, reset):
        """Validated image embeddings (``X`` embedded first by the selector's encoder when
        it holds images)."""
        return validated_images(self, X, selector.get_params().get("encoder"), reset=reset)
