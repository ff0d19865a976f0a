"""Consensus noun selection: keep the nouns that several independent selections agree on.

Which nouns GradNorm keeps depends on where the centre k-means lands, and so on its seed.
Running the selection ``n_rounds`` times, each round's centres fitted on its own random
subsample of the images, and keeping the nouns selected in at least ``min_votes`` rounds
makes it depend less on one landing (the measured effect is in ``benchmarks/RESULTS.md``).
This module holds the rounds' selection and the vote counting; no I/O, no estimator.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._gradnorm import select_top_k_per_center

__all__ = [
    "check_rounds",
    "consensus_order",
    "count_votes",
    "round_seeds",
    "select_by_rounds",
]


def check_rounds(n_rounds, min_votes) -> int:
    """Validate ``n_rounds`` and ``min_votes``; return the vote threshold.

    ``min_votes=None`` means a strict majority, ``n_rounds // 2 + 1`` (1 for one round).
    """
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, numbers.Integral) or n_rounds < 1:
        raise ValueError(
            f"n_rounds must be an int >= 1; got {n_rounds!r}. Pass 1 for the paper's single "
            "selection, or e.g. 5 for a consensus over five seeds."
        )
    if min_votes is None:
        return int(n_rounds) // 2 + 1
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


def select_by_rounds(round_centers, score, *, top_k, min_votes):
    """Select ``top_k`` nouns per centre in every round and keep those of ``min_votes``
    rounds.

    ``score(centers)`` returns ``(scores, assignments, tiebreak)`` of every noun against
    ``centers``. Returns the first round's ``scores`` and ``assignments``, the kept nouns
    (ordered by :func:`consensus_order` on the first round) and their votes. One round gives
    back its own selection, in its order.
    """
    selections = []
    for centers in round_centers:
        scores, assigned, tiebreak = score(centers)
        if not selections:
            first = (scores, assigned, tiebreak)
        selections.append(select_top_k_per_center(scores, assigned, top_k, tiebreak=tiebreak))
    votes = count_votes(selections, len(first[0]))
    selected = consensus_order(votes, min_votes, first[0], first[1], tiebreak=first[2])
    return first[0], first[1], selected, votes[selected]
