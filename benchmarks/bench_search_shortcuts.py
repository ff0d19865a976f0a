"""What the shortcuts of the label-free searches change in their choices (issue 18).

``--part k``: the K criterion ``"bic"`` with scikit-learn's ``GaussianMixture`` (the
first), with the package's NumPy EM one mixture after the other (``diag_mixture_bic``,
the second) and with its mixtures side by side (``diag_mixture_bics``, now): the K each
picks and its confidence, per world, seed and representation (the images ``u`` and
GradNorm's ``[u ; t]``), computed as ``bench_label_free.py --parts k`` computes "bic"; and
the seconds of each scan, side by side (one BLAS thread for all three).

``--part refit``: the stability criterion of ``tune``'s default grid with plain refits (the
estimator's 20 restarts, refit seed 0, as before), with refits capped at
``REFIT_N_INIT`` restarts (now), and, as the measure of noise, plain refits with another
seed (1): the mean |change| of the 19 stabilities, and the true ACC of the setting ``tune``
picks (best language setting by stability, unless the images alone score higher).

Run (the evidence families of ``bench_evidence.py``; about 5 and 15 minutes on one core)::

    python benchmarks/bench_search_shortcuts.py --part k --family calibrated --seeds 3
    python benchmarks/bench_search_shortcuts.py --part refit --family calibrated --seeds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def _gaussian_mixture_bics(P, sizes, seeds, *, reg_covar, tol, x_squared_norms=None):
    """The mixtures as the "bic" criterion computed them first: scikit-learn's estimator,
    one mixture after the other; ``(bics, n_iters)`` as ``diag_mixture_bics`` returns."""
    from sklearn.mixture import GaussianMixture

    bics, iters = [], []
    for k, seed in zip(sizes, seeds, strict=True):
        gm = GaussianMixture(
            int(k),
            covariance_type="diag",
            reg_covar=reg_covar,
            tol=tol,
            init_params="k-means++",
            random_state=seed,
        ).fit(P)
        bics.append(gm.bic(P))
        iters.append(gm.n_iter_)
    return np.asarray(bics), np.asarray(iters)


def _one_by_one_bics(P, sizes, seeds, *, reg_covar, tol, x_squared_norms=None):
    """The package's NumPy EM one mixture after the other (before the side-by-side fits)."""
    from skgradnorm._cluster._mixture import diag_mixture_bic

    out = [
        diag_mixture_bic(
            P, int(k), reg_covar=reg_covar, tol=tol, random_state=s, x_squared_norms=x_squared_norms
        )
        for k, s in zip(sizes, seeds, strict=True)
    ]
    return np.asarray([b for b, _ in out]), np.asarray([i for _, i in out])


def _bic_search(Z, seed, mixture):
    from skgradnorm._cluster import _auto_k, _k_criteria

    fast = _k_criteria.diag_mixture_bics
    _k_criteria.diag_mixture_bics = mixture or fast
    try:
        ks = _auto_k.check_n_clusters_range(None, len(Z))
        t0 = time.perf_counter()
        fits = _auto_k.search_fits(Z, random_state=seed, n_init=_auto_k.SEARCH_N_INIT)
        best, scored, scores, errors = _auto_k.scan_k(fits, ks, "bic")
        seconds = time.perf_counter() - t0
    finally:
        _k_criteria.diag_mixture_bics = fast
    conf = 0.0 if best == ks[-1] else _auto_k.k_confidence(scored, scores, best, "bic", errors)
    return best, conf, seconds


def part_k(world, seed, k):
    from _label_free_families import _representations

    rows = []
    for rep, Z in _representations(world, seed, k).items():
        k0, c0, t0 = _bic_search(Z, seed, _gaussian_mixture_bics)
        k1, c1, t1 = _bic_search(Z, seed, _one_by_one_bics)
        k2, c2, t2 = _bic_search(Z, seed, None)
        rows.append(
            f"{rep} | {k} | {k0} / {k1} / {k2} | {c0:.3f} / {c1:.3f} / {c2:.3f} | "
            f"{t0:.2f} / {t1:.2f} / {t2:.2f}"
        )
    return rows


def _refit_stabilities(model, cands, X, seed, n_init):
    from sklearn.base import clone
    from sklearn.metrics import adjusted_rand_score

    out = []
    for cand in cands:
        est = clone(model).set_params(**cand.params)
        names = [p for p in est.get_params() if p.split("__")[-1] == "random_state"]
        est.set_params(**dict.fromkeys(names, seed), n_init=n_init)
        out.append(adjusted_rand_score(cand.estimator.labels_, est.fit(X).labels_))
    return np.asarray(out)


def _pick(stability):
    """tune's rule: the best language setting (all rows but the last), unless the images
    alone (the last row) score higher."""
    best = int(np.argmax(stability[:-1]))
    return best if stability[best] >= stability[-1] else len(stability) - 1


def part_refit(world, seed, k):
    from sklearn.model_selection import ParameterGrid

    from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    from skgradnorm._cluster._label_free import REFIT_N_INIT
    from skgradnorm._tune_search import fit_candidates, refit_seed
    from skgradnorm.metrics import clustering_accuracy_score
    from skgradnorm.tuning import default_grid

    X = world.data
    model = LanguageAssistedClusterer(
        k,
        selector=GradNormNounSelector(world.noun_embeddings, random_state=seed),
        random_state=seed,
    )
    settings = [*ParameterGrid(default_grid(model, X)), {"selector": "passthrough"}]
    cands = fit_candidates(model, X, settings)
    acc = np.array([clustering_accuracy_score(world.target, c.estimator.labels_) for c in cands])
    variants = {
        "plain": (refit_seed(0), model.n_init),
        "capped": (refit_seed(0), REFIT_N_INIT),
        "other seed": (refit_seed(1), model.n_init),
    }
    stab, secs = {}, {}
    for name, (s, n_init) in variants.items():
        t0 = time.perf_counter()
        stab[name] = _refit_stabilities(model, cands, X, s, n_init)
        secs[name] = time.perf_counter() - t0
    cells = [
        f"{acc[_pick(stab[v])]:.3f} ({np.abs(stab[v] - stab['plain']).mean():.3f})"
        for v in variants
    ]
    return [f"{' | '.join(cells)} | {secs['capped'] / secs['plain']:.2f}"]


PARTS = {
    "k": (
        part_k,
        "| world | seed | representation | K true | K: GaussianMixture / one by one / now | "
        "confidence: the three | scan s: the three |",
    ),
    "refit": (
        part_refit,
        "| world | seed | ACC of tune's pick (mean abs. change of the 19 stabilities): plain "
        "refits | capped refits | plain, other seed | refit time capped / plain |",
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=tuple(PARTS), required=True)
    parser.add_argument("--family", choices=("planted", "calibrated", "real"), required=True)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the family's quick worlds")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_evidence
    from _common import limit_threads

    limit_threads(1)  # after the imports: every BLAS loaded by then is limited
    compute, header = PARTS[args.part]
    print(f"load {os.getloadavg()}\n{header}", flush=True)
    for spec in bench_evidence.FAMILIES[args.family](args.quick):
        for seed in range(1 if spec.fixed else args.seeds):
            world = spec.make(seed)
            k = int(np.unique(world.target).size)
            for row in compute(world, seed, k):
                print(f"| {spec.name} | {seed} | {row} |", flush=True)
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
