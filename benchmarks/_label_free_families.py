"""Parts 3 and 4 of ``bench_label_free.py``: the K criteria and language vs image-only, on
the evidence families (``bench_evidence.FAMILIES``: planted, calibrated, real).

Every (world, seed) is one record, appended to a JSON file as soon as it is done, so that a
long run can be stopped and resumed; the tables are printed from the records.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

#: The representations the K criteria are computed on: the images ``u`` and GradNorm's
#: ``[u ; t]`` (selector defaults).
REPRESENTATIONS = ("u", "ut")


def _worlds(family, quick):
    import bench_evidence

    return bench_evidence.FAMILIES[family](quick)


def _records(path):
    return json.loads(path.read_text()) if path.exists() else []


def _each_world(family, seeds, quick, path, compute):
    """``compute(world, seed, k) -> dict`` for every (world, seed) not yet in ``path``."""
    records = _records(path)
    done = {(r["world"], r["seed"]) for r in records}
    for spec in _worlds(family, quick):
        fixed = None
        for seed in seeds:
            if (spec.name, seed) in done:
                continue
            if spec.fixed:
                try:
                    fixed = fixed if fixed is not None else spec.make(0)
                except FileNotFoundError as exc:
                    print(f"{spec.name}: skipped ({exc})", flush=True)
                    break
            world = fixed if spec.fixed else spec.make(seed)
            k = int(np.unique(world.target).size)
            t0 = time.perf_counter()
            rec = {"world": spec.name, "seed": int(seed), "k": k, "n": int(len(world.data))}
            rec.update(compute(world, seed, k))
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
            path.write_text(json.dumps(records))
            print(f"  {spec.name} | seed {seed} | {rec['seconds']:.0f} s", flush=True)
    return records


def _representations(world, seed, k):
    """``{"u": unit images, "ut": [u ; t] of GradNorm with the selector defaults}``."""
    from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer

    U = world.data / np.linalg.norm(world.data, axis=1, keepdims=True)
    model = LanguageAssistedClusterer(
        k, selector=GradNormNounSelector(world.noun_embeddings, random_state=seed), n_init=1
    ).fit(world.data)
    return {"u": U.astype(np.float32), "ut": model._joint_embedding(world.data)}


# -- part 3: the K criteria ---------------------------------------------------------------


def k_record(world, seed, k):
    """The K every criterion picks on each representation (the package's search)."""
    from skgradnorm._cluster._auto_k import (
        SEARCH_N_INIT,
        check_n_clusters_range,
        k_confidence,
        scan_k,
        search_fits,
    )
    from skgradnorm._cluster._k_criteria import K_CRITERIA

    reps = _representations(world, seed, k)
    ks = check_n_clusters_range(None, len(world.data))
    out = {}
    for rep, Z in reps.items():
        fits = search_fits(Z, random_state=seed, n_init=SEARCH_N_INIT)
        for criterion in K_CRITERIA:
            t0 = time.perf_counter()
            best, scored, scores, errors = scan_k(fits, ks, criterion)
            out[f"{rep}:{criterion}"] = {
                "k": best,
                # as search_k: none when the largest K of the range wins
                "confidence": 0.0
                if best == ks[-1]
                else k_confidence(scored, scores, best, criterion, errors),
                "scored": scored.tolist(),
                "scores": [float(x) for x in scores],
                "seconds": time.perf_counter() - t0,
            }
    return out


def k_tables(records):
    """Exact share, mean |K - K_true| and mean K - K_true per family and criterion."""
    by = defaultdict(lambda: defaultdict(list))
    conf = defaultdict(list)
    for r in records:
        for key, v in r.items():
            if isinstance(v, dict) and "k" in v:
                err = v["k"] - r["k"]
                by[key][r["world"]].append(err)
                conf[key].append((v["confidence"], err))
    keys = sorted(by, key=lambda s: (s.split(":")[0], s))
    worlds = list(dict.fromkeys(r["world"] for r in records))
    lines = [
        "| representation: criterion | exact | mean abs. error | mean error | exact, "
        "confidence >= 0.5 (share of fits) | exact, confidence < 0.5 |",
        "|---|---|---|---|---|---|",
    ]
    for key in keys:
        errs = np.concatenate([by[key][w] for w in worlds if w in by[key]])
        c = np.asarray(conf[key])
        hi, lo = c[:, 0] >= 0.5, c[:, 0] < 0.5
        lines.append(
            f"| {key} | {np.mean(errs == 0):.2f} | {np.abs(errs).mean():.1f} | "
            f"{errs.mean():+.1f} | {_share(c[hi, 1] == 0)} ({hi.mean():.2f}) | "
            f"{_share(c[lo, 1] == 0)} |"
        )
    lines += ["", "K picked per seed, by world:", ""]
    lines += ["| world | K | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for w in worlds:
        recs = [r for r in records if r["world"] == w]
        cells = [", ".join(str(r[key]["k"]) for r in recs) for key in keys]
        lines.append(f"| {w} | {recs[0]['k']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _share(mask):
    return "-" if mask.size == 0 else f"{np.mean(mask):.2f}"


# -- part 4: language vs image-only ------------------------------------------------------


def language_record(world, seed, k):
    """Every setting of tune's default grid and the image-only candidate: ACC and the
    label-free criteria (stability from a refit; the others computed on the images)."""
    from sklearn.model_selection import ParameterGrid

    from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
    from skgradnorm._cluster._label_free import cosine_silhouette, generalization_score
    from skgradnorm._tune_search import fit_candidates, score_candidates
    from skgradnorm.metrics import clustering_accuracy_score
    from skgradnorm.tuning import default_grid

    model = LanguageAssistedClusterer(
        k,
        selector=GradNormNounSelector(world.noun_embeddings, random_state=seed),
        random_state=seed,
    )
    X = world.data
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    settings = [*ParameterGrid(default_grid(model, X)), {"selector": "passthrough"}]
    cands = fit_candidates(model, X, settings, refit_random_state=0)
    stability = score_candidates(cands, X, "stability")
    image_labels = cands[-1].estimator.labels_
    rows = []
    for cand, stab in zip(cands, stability, strict=True):
        labels = cand.estimator.labels_
        rows.append(
            {
                "label": ", ".join(f"{a}={b}" for a, b in sorted(cand.params.items())),
                "image_only": "selector" in cand.params,
                "ACC": clustering_accuracy_score(world.target, labels),
                "stability": stab,
                "generalization": generalization_score(U, labels),
                "silhouette_image": cosine_silhouette(U, labels),
                "seconds": cand.seconds,
                **_language_signals(cand.estimator, X, k, seed, image_labels),
            }
        )
    return {"rows": rows, "image_only_refits": _image_only_refits(cands[-1].estimator, X)}


def _language_signals(est, X, k, seed, image_labels):
    """More label-free signals of one candidate, for decision rules simulated offline:
    agreement with the image-only labels, the silhouette on the clustered ``[u ; t]``, and
    how the text half ``t`` alone clusters (its k-means against the image-only labels)."""
    from sklearn.metrics import adjusted_rand_score

    from skgradnorm import SphericalKMeans
    from skgradnorm._cluster._label_free import cosine_silhouette, representations

    labels = est.labels_
    u, z = representations(est, X)
    out = {
        "ari_image": float(adjusted_rand_score(image_labels, labels)),
        "silhouette": cosine_silhouette(z, labels),
    }
    if z.shape[1] > u.shape[1]:
        t = z[:, u.shape[1] :]
        t_labels = SphericalKMeans(k, n_init=3, random_state=seed).fit(t).labels_
        out["ari_t_image"] = float(adjusted_rand_score(image_labels, t_labels))
        out["ari_t_labels"] = float(adjusted_rand_score(labels, t_labels))
        out["n_nouns"] = int(est.selector_.selected_indices_.size)
    return out


def _image_only_refits(est, X, n=4):
    """Stability of the image-only clustering against ``n`` refits (mean, std): the noise of
    its stability."""
    from sklearn.metrics import adjusted_rand_score

    from skgradnorm._cluster._label_free import refit_labels

    aris = [adjusted_rand_score(est.labels_, o) for o in refit_labels(est, X, range(101, 101 + n))]
    return {"mean": float(np.mean(aris)), "std": float(np.std(aris))}


#: The label-free criteria compared for the language / image-only decision.
LANGUAGE_CRITERIA = ("stability", "generalization", "silhouette_image")


def _decide(rows, rank, compare):
    """ACC of the pick: the best language row by ``rank``, kept unless the image-only row
    scores higher on ``compare``; and whether language was kept."""
    language = [r for r in rows if not r["image_only"]]
    image = [r for r in rows if r["image_only"]][0]
    best = max(language, key=lambda r: r[rank])
    keep = best[compare] >= image[compare]
    return (best if keep else image)["ACC"], keep


#: Thresholds of tune's relative silhouette gain shown in the sweep (0.25: the default).
GAIN_THRESHOLDS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def _by_silhouette_gain(rows, threshold):
    """ACC of tune's pick: the best language row by stability, kept when its relative
    silhouette gain over the image-only row reaches ``threshold``; and whether it was."""
    from skgradnorm.tuning import relative_gain

    image = [r for r in rows if r["image_only"]][0]
    best = max((r for r in rows if not r["image_only"]), key=lambda r: r["stability"])
    keep = relative_gain(best["silhouette"], image["silhouette"]) >= threshold
    return (best if keep else image)["ACC"], keep


def language_tables(records):
    """Per world: image-only ACC (mean ± std over seeds), the best language setting alone,
    the pick of each decision rule (tune's default last), the oracle; then how often each
    rule chose language, and tune's rule at other thresholds."""
    worlds = list(dict.fromkeys(r["world"] for r in records))
    rules = [
        (f"decided by {c}", lambda rows, c=c: _decide(rows, "stability", c))
        for c in LANGUAGE_CRITERIA
    ]
    if all("silhouette" in row for r in records for row in r["rows"]):
        rules.append(
            ("silhouette gain >= 0.25 (tune)", lambda rows: _by_silhouette_gain(rows, 0.25))
        )
    head = (
        ["image-only", "language only (best by stability)"]
        + [name for name, _ in rules]
        + ["oracle (best ACC of the grid)"]
    )
    lines = ["| world | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    totals = defaultdict(list)
    for w in worlds:
        recs = [r for r in records if r["world"] == w]
        cols = defaultdict(list)
        for r in recs:
            rows = r["rows"]
            cols["image-only"].append([x for x in rows if x["image_only"]][0]["ACC"])
            language = [x for x in rows if not x["image_only"]]
            cols["language"].append(max(language, key=lambda x: x["stability"])["ACC"])
            for name, rule in rules:
                acc, keep = rule(rows)
                cols[name].append(acc)
                totals[f"language kept ({name})"].append(keep)
            cols["oracle"].append(max(x["ACC"] for x in rows))
        cells = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in cols.values()]
        for name, v in cols.items():
            totals[name].append(np.mean(v))
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    names = ["image-only", "language", *(n for n, _ in rules), "oracle"]
    lines.append(
        "| **mean over worlds** | "
        + " | ".join(f"**{np.mean(totals[n]):.3f}**" for n in names)
        + " |"
    )
    lines += [""] + [
        f"- share of fits where language was kept, {name}: "
        f"{np.mean(totals[f'language kept ({name})']):.2f}"
        for name, _ in rules
    ]
    if any("silhouette" in n for n, _ in rules):
        sweep = []
        for t in GAIN_THRESHOLDS:
            per_world = [
                np.mean([_by_silhouette_gain(r["rows"], t)[0] for r in records if r["world"] == w])
                for w in worlds
            ]
            sweep.append(f"{t}: {np.mean(per_world):.3f}")
        lines.append("- tune's rule at other thresholds (mean over worlds): " + ", ".join(sweep))
    return "\n".join(lines)


def run_part(part, family, seeds, quick, out):
    """Run part ``"k"``, ``"language"`` or ``"speed"`` on ``family``; print its tables."""
    out.mkdir(parents=True, exist_ok=True)
    path = Path(out) / f"label-free-{part}-{family}{'-quick' if quick else ''}.json"
    compute, tables = PARTS[part]
    records = _each_world(family, seeds, quick, path, compute)
    if not records:
        return ""
    tables = tables(records)
    print(f"\n== {part}: family {family} ({len(records)} fits; records in {path}) ==\n")
    print(tables, flush=True)
    return tables


# -- part 5: speed, side by side ---------------------------------------------------------


def todays_k_search(Z, ks, n_init, random_state):
    """The K search before this benchmark's part 5 existed (kept here as the reference):
    every K of the range, two fits with ``n_init`` restarts each on all the rows, the
    stability (ARI) of each K, the largest K among exact ties of the best."""
    from sklearn.metrics import adjusted_rand_score

    from skgradnorm import spherical_kmeans

    rng = np.random.RandomState(random_state)
    seed, other = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
    scores = []
    for k in ks:
        a = spherical_kmeans(Z, int(k), n_init=n_init, random_state=seed)[1]
        b = spherical_kmeans(Z, int(k), n_init=n_init, random_state=other)[1]
        scores.append(adjusted_rand_score(a, b))
    scores = np.asarray(scores)
    return int(ks[np.flatnonzero(scores >= scores.max())[-1]])


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


#: Timings of the fit with K given (the ratios' denominator) and of the ``n_clusters="auto"``
#: fits, of which the median is used:
#: one timing of a fit of a second or less varied by up to 3x between runs on the shared
#: machine (load; the first fit of a process also pays one-time costs).
FIT_REPEATS = 3


def _median_timed(fn, repeats=FIT_REPEATS):
    """``(result of the last call, median seconds, all seconds)`` of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        out, seconds = _timed(fn)
        times.append(seconds)
    return out, float(np.median(times)), times


#: Whether part "speed" also times the K search as it was before this part existed.
REFERENCE_K_SEARCH = True


def speed_record(world, seed, k):
    """Seconds of one fit with K given (the median of :data:`FIT_REPEATS`), of
    ``n_clusters="auto"`` (today's search and this one), and of the label-free grid
    (GridSearchCV with the scorer, and ``tune``)."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer, SphericalKMeans
    from skgradnorm._cluster._auto_k import check_n_clusters_range
    from skgradnorm.metrics import clustering_accuracy_score, label_free_scorer
    from skgradnorm.model_selection import TransductiveSplit
    from skgradnorm.tuning import default_grid, tune

    X = world.data
    acc = lambda labels: clustering_accuracy_score(world.target, labels)  # noqa: E731
    laic = LanguageAssistedClusterer(
        k,
        selector=GradNormNounSelector(world.noun_embeddings, random_state=seed),
        random_state=seed,
    )
    km = SphericalKMeans(k, n_init=10, random_state=seed)
    out = {}
    fit, out["laic_fit_k"], out["laic_fit_k_all"] = _median_timed(lambda: clone(laic).fit(X))
    out["laic_fit_k_acc"] = acc(fit.labels_)
    _, out["km_fit_k"], out["km_fit_k_all"] = _median_timed(lambda: clone(km).fit(X))
    # the two n_clusters="auto" fits: medians of FIT_REPEATS too (a tenth of a second)
    auto, out["km_auto"], out["km_auto_all"] = _median_timed(
        lambda: clone(km).set_params(n_clusters="auto").fit(X)
    )
    out["km_auto_k"] = int(auto.n_clusters_)
    auto, out["laic_auto"], out["laic_auto_all"] = _median_timed(
        lambda: clone(laic).set_params(n_clusters="auto").fit(X)
    )
    out["laic_auto_k"], out["laic_auto_conf"] = int(auto.n_clusters_), auto.n_clusters_confidence_
    ks = check_n_clusters_range(None, len(X))

    def today():
        selector = clone(laic.selector).set_params(concatenate=True).fit(X)
        Z = selector.transform(X)
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        return todays_k_search(Z, ks, laic.n_init, seed)

    if REFERENCE_K_SEARCH:
        out["laic_auto_today_k"], out["laic_auto_today"] = _timed(today)
    else:  # skipped (--no-reference-k): it is 100-300 fits long
        out["laic_auto_today_k"], out["laic_auto_today"] = None, None
    grid = default_grid(laic, X)
    out["n_settings_today"] = len(ParameterGrid(grid))
    search, out["grid_today"] = _timed(
        lambda: GridSearchCV(laic, grid, scoring=label_free_scorer, cv=TransductiveSplit()).fit(X)
    )
    out["grid_today_acc"] = acc(search.best_estimator_.labels_)
    result, out["tune"] = _timed(lambda: tune(laic, X))
    out["n_settings_tune"] = len(result.table_)
    out["tune_acc"] = acc(result.best_estimator_.labels_)
    out["tune_gain"] = result.language_gain_
    return out


def _ratio(a, b):
    return "-" if a is None else f"{a / b:.1f}"


def speed_table(records):
    lines = [
        "| world | n | K | fit, K given (s) | auto, today (x fit) | auto, now (x fit) | "
        "SphericalKMeans auto (x its fit) | grid, today (x settings x fit) | tune (x "
        "settings x fit) | K: today / now / true |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        f = r["laic_fit_k"]
        lines.append(
            f"| {r['world']} | {r['n']} | {r['k']} | {f:.2f} | "
            f"{_ratio(r['laic_auto_today'], f)} | {r['laic_auto'] / f:.1f} | "
            f"{r['km_auto'] / r['km_fit_k']:.1f} | "
            f"{r['grid_today'] / (r['n_settings_today'] * f):.2f} ({r['n_settings_today']}) | "
            f"{r['tune'] / (r['n_settings_tune'] * f):.2f} ({r['n_settings_tune']}) | "
            f"{r['laic_auto_today_k']} / {r['laic_auto_k']} / {r['k']} |"
        )
    return "\n".join(lines)


#: Part name -> (record of one world and seed, tables of the records).
PARTS = {
    "k": (k_record, k_tables),
    "language": (language_record, language_tables),
    "speed": (speed_record, speed_table),
}
