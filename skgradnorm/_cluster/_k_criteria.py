"""Label-free criteria of the number of clusters K, and the rule each uses to pick K.

Every criterion scores the K values of a search from spherical k-means fits of the same
rows, made once and shared (:class:`KFits`); each returns one number per K, higher is
better, and a rule turns the numbers into a choice:

- ``"stability"`` [1]_: the adjusted Rand index between two fits with different seeds; the
  largest K among exact ties of the best;
- ``"silhouette"`` [2]_: the mean cosine silhouette of a fit; its maximum;
- ``"prediction_strength"`` [3]_: the rows are split in two halves, each is clustered, and
  for each cluster of one half the share of its pairs of rows that the other half's
  centres also put together, the smallest over clusters (averaged over both directions);
  the largest K whose strength is at least :data:`PREDICTION_STRENGTH_THRESHOLD`;
- ``"gap"`` [4]_: the gap statistic, the log within-cluster dispersion of reference data
  without clusters (uniform in the box of the data's principal axes, rows renormalised)
  minus that of the data; the smallest K whose gap is within one standard error of the
  next K's;
- ``"eigengap"`` [5]_: the gap between the K-th and (K+1)-th smallest eigenvalues of the
  normalised Laplacian of the symmetric k-nearest-neighbour graph; its maximum;
- ``"bic"`` [6]_: minus the Bayesian information criterion of a Gaussian mixture with
  diagonal covariances fitted on the first :data:`BIC_COMPONENTS` principal components,
  averaged over two fits with different seeds (EM finds local optima, whose BIC differs
  by tens of units between seeds); its maximum. The difference between the two fits also
  measures that noise, from which the confidence of the choice is computed.

Math only; :mod:`._auto_k` runs the search.

References
----------
.. [1] T. Lange, V. Roth, M. L. Braun, J. M. Buhmann, "Stability-based validation of
   clustering solutions", Neural Computation 16, 2004.
.. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation
   of cluster analysis", J. Comput. Appl. Math. 20, 1987.
.. [3] R. Tibshirani, G. Walther, "Cluster validation by prediction strength", J. Comput.
   Graph. Stat. 14, 2005.
.. [4] R. Tibshirani, G. Walther, T. Hastie, "Estimating the number of clusters in a data
   set via the gap statistic", J. R. Stat. Soc. B 63, 2001.
.. [5] U. von Luxburg, "A tutorial on spectral clustering", Statistics and Computing 17,
   2007 (section 8.3).
.. [6] C. Fraley, A. E. Raftery, "How many clusters? Which clustering method? Answers via
   model-based cluster analysis", The Computer Journal 41, 1998.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import laplacian
from scipy.sparse.linalg import eigsh
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_random_state
from sklearn.utils.extmath import row_norms

from ._kmeans import spherical_kmeans
from ._label_free import cosine_silhouette
from ._mixture import diag_mixture_bics
from ._neighbors import nearest_neighbors

__all__ = [
    "K_CRITERIA",
    "KFits",
    "choose_k",
    "criterion_scores",
]

#: The criteria, by name (see the module docstring).
K_CRITERIA = ("stability", "silhouette", "prediction_strength", "gap", "eigengap", "bic")

#: Tibshirani and Walther's threshold: "0.8 or 0.9"; the lower keeps more K.
PREDICTION_STRENGTH_THRESHOLD = 0.8
#: Reference data sets of the gap statistic, and Lloyd iterations on each.
GAP_REFERENCES = 2
GAP_MAX_ITER = 20
#: Neighbours per row of the eigengap's graph.
EIGENGAP_NEIGHBORS = 10
#: Principal components the mixture of ``"bic"`` is fitted on, and EM's tolerance on the
#: mean log-likelihood per row (scikit-learn's default, 1e-3, took three times longer for
#: the same choices in ``benchmarks/bench_label_free.py``'s worlds).
BIC_COMPONENTS = 20
BIC_TOL = 1e-2
#: The variance added to every component's diagonal covariance (as ``reg_covar``).
BIC_REG_COVAR = 1e-4


class KFits:
    """Spherical k-means fits of the unit rows ``Z`` at each K, made when first needed.

    ``fit(k, name)`` is the fit called ``name``: ``"a"`` and ``"b"`` on all the rows with two
    seeds, ``"half0"`` and ``"half1"`` on two halves of the rows, ``"ref0"``... on the gap
    statistic's reference data. Each has ``n_init`` restarts and its own seed drawn from
    ``random_state``; ``kmeans_params`` go to :func:`spherical_kmeans`.
    """

    def __init__(self, Z, *, n_init=2, random_state=None, **kmeans_params):
        self.Z = Z
        self.n_init = n_init
        self.kmeans_params = kmeans_params
        rng = check_random_state(random_state)
        self.seeds = {
            name: int(s)
            for name, s in zip(
                ("a", "b", "half0", "half1", "ref", "split", "mixture0", "mixture1"),
                rng.randint(np.iinfo(np.int32).max, size=8),
                strict=True,
            )
        }
        order = np.random.RandomState(self.seeds["split"]).permutation(Z.shape[0])
        self.halves = (np.sort(order[: Z.shape[0] // 2]), np.sort(order[Z.shape[0] // 2 :]))
        self._fits = {}
        self._references = None
        self._projection = None
        self._eigenvalues = None

    def rows(self, name):
        if name.startswith("half"):
            return self.Z[self.halves[int(name[4:])]]
        if name.startswith("ref"):
            return self.references()[int(name[3:])]
        return self.Z

    def fit(self, k, name):
        """``(centers, labels, objective)`` of the fit ``name`` at ``k`` clusters."""
        key = (int(k), name)
        if key not in self._fits:
            params = dict(self.kmeans_params)
            seed = (
                self.seeds[name.rstrip("0123456789")]
                if not name.startswith("half")
                else (self.seeds[name])
            )
            if name.startswith("ref"):
                params["max_iter"] = min(params.get("max_iter", 300), GAP_MAX_ITER)
            centers, labels, objective, _ = spherical_kmeans(
                self.rows(name), int(k), n_init=self.n_init, random_state=seed, **params
            )
            self._fits[key] = (centers, labels, objective)
        return self._fits[key]

    def references(self):
        """The gap statistic's reference data: uniform in the box of the principal axes
        of ``Z`` (Tibshirani et al.'s second reference), rows renormalised."""
        if self._references is None:
            rng = np.random.RandomState(self.seeds["ref"])
            pca = PCA(random_state=0).fit(self.Z)
            scores = pca.transform(self.Z)
            low, high = scores.min(axis=0), scores.max(axis=0)
            refs = []
            for _ in range(GAP_REFERENCES):
                R = rng.uniform(low, high, size=scores.shape) @ pca.components_ + pca.mean_
                R /= np.maximum(np.linalg.norm(R, axis=1, keepdims=True), 1e-12)
                refs.append(R.astype(self.Z.dtype))
            self._references = refs
        return self._references

    def projection(self):
        """``Z`` on its first :data:`BIC_COMPONENTS` principal components (float64)."""
        if self._projection is None:
            n_comp = min(BIC_COMPONENTS, self.Z.shape[1], self.Z.shape[0] - 1)
            P = PCA(n_components=n_comp, random_state=0).fit_transform(self.Z)
            self._projection = P.astype(np.float64)
        return self._projection

    def eigenvalues(self, k_max):
        """The ``k_max + 2`` smallest eigenvalues of the normalised Laplacian of the
        symmetric :data:`EIGENGAP_NEIGHBORS`-nearest-neighbour graph of ``Z``."""
        if self._eigenvalues is None or self._eigenvalues.size < k_max + 2:
            n = self.Z.shape[0]
            n_neighbors = min(EIGENGAP_NEIGHBORS, n - 1)
            idx = nearest_neighbors(np.ascontiguousarray(self.Z, np.float32), n_neighbors)
            rows = np.repeat(np.arange(n), n_neighbors)
            A = csr_matrix((np.ones(rows.size), (rows, idx.ravel())), shape=(n, n))
            A = ((A + A.T) > 0).astype(np.float64)
            L = laplacian(A, normed=True)
            m = min(k_max + 2, n - 1)
            # shift-invert just below 0: the smallest eigenvalues of a positive
            # semi-definite matrix, converged in a few iterations
            vals = eigsh(
                L,
                k=m,
                sigma=-1e-3,
                which="LM",
                return_eigenvectors=False,
                v0=(np.random.RandomState(self.seeds["split"]).uniform(size=n)),
            )
            self._eigenvalues = np.sort(vals)
        return self._eigenvalues


def _prediction_strength(test_labels, predicted):
    """Smallest share, over the test clusters of 2+ rows, of pairs the prediction keeps."""
    table = contingency_matrix(test_labels, predicted)
    sizes = table.sum(axis=1)
    ok = sizes > 1
    if not np.any(ok):
        return 0.0
    kept = (table * (table - 1)).sum(axis=1)[ok] / (sizes[ok] * (sizes[ok] - 1))
    return float(kept.min())


def _score(fits, k, criterion):
    """The criterion at ``k`` (for ``"gap"``: ``(gap, standard error)``); ``"bic"`` and
    ``"eigengap"`` are scored for all the K values at once by :func:`criterion_scores`."""
    Z = fits.Z
    if criterion == "stability":
        return float(adjusted_rand_score(fits.fit(k, "a")[1], fits.fit(k, "b")[1]))
    if criterion == "silhouette":
        return cosine_silhouette(Z, fits.fit(k, "a")[1], random_state=0)
    if criterion == "prediction_strength":
        strengths = []
        for test, train in ((0, 1), (1, 0)):
            train_centers = fits.fit(k, f"half{train}")[0]
            rows = Z[fits.halves[test]]
            predicted = np.argmax(rows @ train_centers.T, axis=1)
            strengths.append(_prediction_strength(fits.fit(k, f"half{test}")[1], predicted))
        return float(np.mean(strengths))
    if criterion == "gap":
        n = Z.shape[0]
        log_w = np.log(max(n - fits.fit(k, "a")[2], 1e-12))
        ref = [np.log(max(n - fits.fit(k, f"ref{b}")[2], 1e-12)) for b in range(GAP_REFERENCES)]
        return float(np.mean(ref) - log_w), float(np.std(ref) * np.sqrt(1 + 1 / len(ref)))
    raise ValueError(f"criterion must be one of {K_CRITERIA}; got {criterion!r}.")


def _bic_scores(fits, ks):
    """Minus the mean BIC of the two mixtures at every K of ``ks``, and the absolute
    difference of their BICs: scikit-learn's ``GaussianMixture(covariance_type="diag",
    reg_covar=BIC_REG_COVAR, tol=BIC_TOL, init_params="k-means++").fit(P).bic(P)`` on the
    projection ``P``, written out over NumPy, all the mixtures fitted side by side (see
    ._mixture)."""
    P = fits.projection()
    sizes = [int(k) for k in ks for _ in (0, 1)]
    seeds = [fits.seeds[f"mixture{i}"] for _ in ks for i in (0, 1)]
    bics, _ = diag_mixture_bics(
        P,
        sizes,
        seeds,
        reg_covar=BIC_REG_COVAR,
        tol=BIC_TOL,
        x_squared_norms=row_norms(P, squared=True),
    )
    bics = bics.reshape(-1, 2)
    return -bics.mean(axis=1), np.abs(bics[:, 0] - bics[:, 1])


def criterion_scores(fits, ks, criterion):
    """``(scores, errors)``: the criterion at every K of ``ks`` (higher is better) and,
    for ``"gap"``, its standard errors, for ``"bic"``, the absolute difference between the
    BIC of its two fits (None for the others)."""
    ks = np.asarray(ks)
    if criterion == "eigengap":
        vals = fits.eigenvalues(int(ks.max()))
        scores = [float(vals[k] - vals[k - 1]) if k < vals.size else -np.inf for k in ks.tolist()]
        return np.asarray(scores), None
    if criterion == "bic":
        return _bic_scores(fits, ks)
    values = [_score(fits, int(k), criterion) for k in ks]
    if criterion == "gap":
        return np.asarray([v[0] for v in values]), np.asarray([v[1] for v in values])
    return np.asarray(values, dtype=float), None


def choose_k(ks, scores, criterion, errors=None) -> int:
    """The index in ``ks`` of the K the criterion's rule picks (see the module docstring)."""
    scores = np.asarray(scores, dtype=float)
    if criterion == "stability":
        return int(np.flatnonzero(scores >= scores.max())[-1])
    if criterion == "prediction_strength":
        ok = np.flatnonzero(scores >= PREDICTION_STRENGTH_THRESHOLD)
        return int(ok[-1]) if ok.size else 0
    if criterion == "gap":
        for i in range(len(ks) - 1):
            if scores[i] >= scores[i + 1] - errors[i + 1]:
                return i
        return len(ks) - 1
    return int(np.argmax(scores))
