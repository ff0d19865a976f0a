"""Consensus noun selection: keep the nouns that several independent selections agree on.

Which nouns GradNorm keeps depends on where the centre k-means lands, and so on its seed.
Running the selection ``n_rounds`` times and voting makes it depend less on one landing
(the measured effect is in ``benchmarks/RESULTS.md``). Two rules:

- ``"votes"``: keep the nouns selected in at least ``min_votes`` rounds, whatever their
  centre;
- ``"matched"``: match every round's centres to the first round's (Hungarian assignment on
  cosine similarity), count a noun's votes per matched centre, and keep, for every centre,
  the ``top_k`` nouns with the most votes (at least ``min_votes``). A mode whose centre
  moves between rounds keeps nouns, and the selection keeps the size of one round's.

This module holds the vote counting only; no I/O, no estimator.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.utils import check_random_state

from ._gradnorm import select_top_k_per_center

__all__ = [
    "check_rounds",
    "consensus_order",
    "count_votes",
    "match_centers",
    "matched_consensus",
    "matched_votes",
    "round_seeds",
    "select_by_rounds",
    "vote",
]


def check_rounds(n_rounds, min_votes, rule="votes") -> int:
    """Validate ``n_rounds`` and ``min_votes``; return the vote threshold.

    ``min_votes=None`` means a strict majority, ``n_rounds // 2 + 1``, for the ``"votes"``
    rule (1 for one round), and 1 for the ``"matched"`` rule.
    """
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, numbers.Integral) or n_rounds < 1:
        raise ValueError(
            f"n_rounds must be an int >= 1; got {n_rounds!r}. Pass 1 for the paper's single "
            "selection, or e.g. 5 for a consensus over five seeds."
        )
    if min_votes is None:
        return 1 if rule == "matched" else int(n_rounds) // 2 + 1
    if isinstance(min_votes, bool) or not isinstance(min_votes, numbers.Integral) or min_votes < 1:
        raise ValueError(
            f"min_votes must be None (a strict majority) or an int in [1, n_rounds]; "
            f"got {min_votes!r}."
        )
    if min_votes > n_rounds:
        raise ValueError(
            f"min_votes={min_votes} is larger than n_rounds={n_rounds}: no noun could get that "
            f"many votes; use min_votes <= {n_rounds}, or None for a strict majority."
        )
    return int(min_votes)


def round_seeds(random_state, n_rounds: int) -> list:
    """The ``random_state`` of each round.

    One round uses ``random_state`` itself, so that ``n_rounds=1`` is exactly the single
    selection of the paper. Several rounds draw ``n_rounds`` integer seeds from it (the
    same ``random_state`` gives the same seeds).
    """
    if n_rounds == 1:
        return [random_state]
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(np.iinfo(np.int32).max, size=n_rounds)]


def count_votes(selections, n_items: int) -> np.ndarray:
    """How many of the ``selections`` (arrays of item indices) contain each item.

    Examples
    --------
    >>> count_votes([np.array([0, 2]), np.array([2, 3]), np.array([2])], 5)
    array([1, 0, 3, 1, 0])
    """
    votes = np.zeros(n_items, dtype=np.int64)
    for selected in selections:
        votes[np.unique(np.asarray(selected, dtype=np.int64))] += 1
    return votes


def consensus_order(votes, min_votes: int, scores, assignments, tiebreak=None) -> np.ndarray:
    """Indices with at least ``min_votes`` votes, ordered by centre, then score, then index.

    Equal scores are ordered by ``tiebreak`` first when given, as in
    :func:`skgradnorm._gradnorm.select_top_k_per_center`.

    ``scores`` and ``assignments`` are those of one round (the first). The order is the
    one :func:`skgradnorm._gradnorm.select_top_k_per_center` returns, so that a single
    round gives back its own selection unchanged.

    Examples
    --------
    >>> consensus_order(np.array([2, 1, 2, 2]), 2, np.array([0.3, 0.1, 0.2, 0.5]),
    ...                 np.array([1, 0, 0, 0]))
    array([2, 3, 0])
    """
    keys = (np.asarray(scores), np.asarray(assignments))
    if tiebreak is not None:
        keys = (np.asarray(tiebreak), *keys)
    order = np.lexsort(keys)
    return order[np.asarray(votes)[order] >= min_votes]


def match_centers(reference, centers) -> np.ndarray:
    """For every row of ``centers``, the row of ``reference`` it is matched to.

    The one-to-one matching of largest total cosine similarity (both sets have unit rows
    and the same number of rows): the Hungarian assignment of
    :func:`scipy.optimize.linear_sum_assignment`.

    Examples
    --------
    >>> match_centers(np.eye(3), np.eye(3)[[2, 0, 1]])
    array([2, 0, 1])
    """
    similarity = np.asarray(centers, dtype=np.float64) @ np.asarray(reference, np.float64).T
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    match = np.empty(len(rows), dtype=np.int64)
    match[rows] = cols
    return match


def matched_votes(selections, assignments, matches, n_centers: int):
    """Votes per (noun, matched centre): ``(nouns, centers, votes)``, one entry per pair.

    ``selections[r]`` holds the nouns round ``r`` selected, ``assignments[r]`` every noun's
    centre in round ``r`` and ``matches[r]`` the reference centre each of round ``r``'s
    centres is matched to (:func:`match_centers`; the identity for the reference round).
    A noun gets a vote for reference centre ``j`` from each round that selected it for a
    centre matched to ``j``.

    Examples
    --------
    >>> nouns, centers, votes = matched_votes(
    ...     [np.array([0, 1]), np.array([0, 2])],
    ...     [np.array([0, 1, 1]), np.array([1, 0, 0])],
    ...     [np.array([0, 1]), np.array([1, 0])],
    ...     2,
    ... )
    >>> nouns.tolist(), centers.tolist(), votes.tolist()
    ([0, 1, 2], [0, 1, 1], [2, 1, 1])
    """
    keys = [
        np.asarray(sel, np.int64) * n_centers + np.asarray(match)[np.asarray(assign)[sel]]
        for sel, assign, match in zip(selections, assignments, matches, strict=True)
    ]
    keys, votes = np.unique(np.concatenate(keys), return_counts=True)
    return keys // n_centers, keys % n_centers, votes


def matched_consensus(nouns, centers, votes, top_k: int, min_votes: int, scores, tiebreak=None):
    """``(kept, kept_votes)``: per reference centre, the ``top_k`` nouns with the most votes.

    Only pairs with at least ``min_votes`` votes compete; equal votes are ordered by the
    reference round's ``scores`` (smaller first), then ``tiebreak``, then noun index. A noun
    kept for several centres appears once, with its largest vote. ``kept`` is sorted.

    Examples
    --------
    >>> matched_consensus(np.array([0, 1, 2, 3]), np.array([0, 0, 0, 1]),
    ...                   np.array([3, 1, 2, 1]), 2, 1, np.array([0.1, 0.2, 0.3, 0.4]))
    (array([0, 2, 3]), array([3, 2, 1]))
    """
    ok = votes >= min_votes
    nouns, centers, votes = nouns[ok], centers[ok], votes[ok]
    scores = np.asarray(scores)[nouns]
    keys = (scores, -votes, centers)
    if tiebreak is not None:
        keys = (np.asarray(tiebreak)[nouns], *keys)
    order = np.lexsort(keys)
    sorted_centers = centers[order]
    starts = np.flatnonzero(np.r_[True, sorted_centers[1:] != sorted_centers[:-1]])
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    chosen = order[rank < top_k]
    kept = np.unique(nouns[chosen])
    best = np.zeros(kept.size, dtype=np.int64)
    np.maximum.at(best, np.searchsorted(kept, nouns[chosen]), votes[chosen])
    return kept, best


def vote(selections, assignments, round_centers, *, rule, min_votes, top_k, scores, tiebreak):
    """``(selected, votes)``: the consensus of the rounds' selections, and each kept noun's
    votes, ordered by first-round centre, then score (:func:`consensus_order`).

    ``rule``: ``"votes"`` (at least ``min_votes`` rounds) or ``"matched"`` (per first-round
    centre, :func:`matched_consensus` on :func:`matched_votes`). ``scores`` and
    ``tiebreak`` are the first round's; ``assignments[r]`` every noun's centre in round
    ``r``. One round gives back its selection, in its order, whatever the rule.
    """
    n_items = len(scores)
    if rule == "votes" or len(selections) == 1:
        votes = count_votes(selections, n_items)
    else:
        reference = round_centers[0]
        matches = [np.arange(len(reference))]
        matches += [match_centers(reference, centers) for centers in round_centers[1:]]
        kept, kept_votes = matched_consensus(
            *matched_votes(selections, assignments, matches, len(reference)),
            top_k,
            min_votes,
            scores,
            tiebreak,
        )
        votes = np.zeros(n_items, dtype=np.int64)
        votes[kept] = kept_votes
    selected = consensus_order(votes, min_votes, scores, assignments[0], tiebreak=tiebreak)
    return selected, votes[selected]


def select_by_rounds(round_centers, score, *, top_k, rule, min_votes):
    """Select ``top_k`` nouns per centre in every round and :func:`vote`.

    ``score(centers)`` returns ``(scores, assignments, tiebreak)`` of every noun against
    ``centers``. Returns the first round's ``scores`` and ``assignments``, then the kept
    nouns and their votes.
    """
    selections, assignments = [], []
    for centers in round_centers:
        scores, assigned, tiebreak = score(centers)
        if not selections:
            first = (scores, assigned, tiebreak)
        selections.append(select_top_k_per_center(scores, assigned, top_k, tiebreak=tiebreak))
        assignments.append(assigned)
    selected, votes = vote(
        selections,
        assignments,
        round_centers,
        rule=rule,
        min_votes=min_votes,
        top_k=top_k,
        scores=first[0],
        tiebreak=first[2],
    )
    return first[0], first[1], selected, votes
