"""The scoring math: exact against autograd and against plain per-centre references."""

import numpy as np
import pytest
import torch
from _reference import (
    reference_gradnorm_scores,
    reference_select_top_k_per_center,
    reference_text_counterparts,
)
from conftest import random_unit_rows, unit

from skgradnorm import gradnorm_scores
from skgradnorm._gradnorm import select_top_k_per_center, sic_scores, tac_scores
from skgradnorm._retrieval import text_counterparts


def _autograd_gradnorm(E, W, T, p):
    """T * ||dCE(onehot(k*), softmax(W e / T)) / dW||_p per noun, by torch autograd in float64."""
    out = []
    for e in torch.as_tensor(E, dtype=torch.float64):
        Wt = torch.as_tensor(W, dtype=torch.float64).clone().requires_grad_(True)
        logits = (Wt @ e) / T
        target = logits.argmax().detach()
        torch.nn.functional.cross_entropy(logits[None], target[None]).backward()
        out.append(T * torch.linalg.vector_norm(Wt.grad.flatten(), ord=p).item())
    return np.array(out)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("T", [0.02, 0.1, 1.0])
def test_scores_equal_temperature_times_autograd_gradient_norm(p, T):
    rng = np.random.default_rng(int(p * 10 + T * 100))
    E, W = random_unit_rows(rng, 60, 24), random_unit_rows(rng, 15, 24)
    expected = _autograd_gradnorm(E, W, T, p)
    scores32, assign32 = gradnorm_scores(
        E.astype(np.float32), W.astype(np.float32), temperature=T, p=p
    )
    scores64, assign64 = gradnorm_scores(E, W, temperature=T, p=p)
    assert scores32.dtype == np.float32 and scores64.dtype == np.float64
    # float32: the logits z = W e / T carry ~6e-8 * |z| absolute error (|z| <= 1/T = 50),
    # which becomes a relative error of a few 1e-6 in the score. The small atol is for the
    # reference itself: autograd forms s_k* - 1 with s_k* = 1 - 1e-10 for confident nouns,
    # losing digits that our cancellation-free formula keeps (abs. error ~1e-15).
    np.testing.assert_allclose(scores32, expected, rtol=2e-5, atol=1e-12)
    np.testing.assert_allclose(scores64, expected, rtol=1e-9, atol=1e-13)
    np.testing.assert_array_equal(assign64, (E @ W.T).argmax(axis=1))


def test_scores_do_not_need_unit_inputs():
    # The function computes the formula on the inputs as given (no hidden normalisation).
    rng = np.random.default_rng(1)
    E, W = rng.normal(size=(30, 8)) * 3, rng.normal(size=(6, 8))
    np.testing.assert_allclose(
        gradnorm_scores(E, W, temperature=0.5, p=2.0)[0],
        _autograd_gradnorm(E, W, 0.5, 2.0),
        rtol=1e-9,
        atol=1e-13,
    )


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_chunked_fast_path_equals_per_centre_reference(p):
    rng = np.random.default_rng(2)
    E, W = random_unit_rows(rng, 500, 32), random_unit_rows(rng, 40, 32)
    ref, ref_assign = reference_gradnorm_scores(E, W, temperature=0.05, p=p)
    for chunk in (1, 7, 64, None):
        scores, assign = gradnorm_scores(E, W, temperature=0.05, p=p, chunk_size=chunk)
        np.testing.assert_array_equal(assign, ref_assign)
        np.testing.assert_allclose(scores, ref, rtol=1e-9)


def test_p_inf_is_one_minus_confidence_times_max_abs():
    rng = np.random.default_rng(3)
    E, W = random_unit_rows(rng, 50, 8), random_unit_rows(rng, 5, 8)
    z = E @ W.T / 0.3
    s = np.exp(z - z.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    expected = (1 - s.max(1)) * np.abs(E).max(1)
    np.testing.assert_allclose(
        gradnorm_scores(E, W, temperature=0.3, p=np.inf)[0], expected, rtol=1e-10
    )


def test_p1_is_twice_one_minus_confidence_and_ranks_like_tac():
    """PAPER.md: with p = 1, score = 2 (1 - c) ||e||_1, so for nouns of equal L1 norm the
    order within each centre is TAC's max-confidence order (here at temperature T)."""
    rng = np.random.default_rng(4)
    E = rng.normal(size=(400, 16))
    E /= np.abs(E).sum(axis=1, keepdims=True)  # unit L1 norm: ||e||_1 = 1 for every noun
    W = random_unit_rows(rng, 12, 16)
    for T in (0.05, 1.0):
        z = E @ W.T / T
        s = np.exp(z - z.max(1, keepdims=True))
        s /= s.sum(1, keepdims=True)
        confidence = s.max(1)
        scores, assign = gradnorm_scores(E, W, temperature=T, p=1.0)
        np.testing.assert_allclose(scores, 2 * (1 - confidence), rtol=1e-9)
        for k in np.unique(assign):
            members = np.flatnonzero(assign == k)
            by_score = members[np.argsort(scores[members], kind="stable")]
            by_confidence = members[np.argsort(-confidence[members], kind="stable")]
            np.testing.assert_array_equal(by_score, by_confidence)
    # and at T = 1 the selection equals the "tac" filter (softmax over raw cosines)
    g = select_top_k_per_center(*gradnorm_scores(E, W, temperature=1.0, p=1.0), 5)
    t = select_top_k_per_center(*tac_scores(E, W), 5)
    np.testing.assert_array_equal(g, t)


@pytest.mark.parametrize("top_k", [1, 3, 1000])
def test_selection_keeps_top_k_smallest_per_centre_and_nothing_else(top_k):
    rng = np.random.default_rng(5)
    scores = rng.random(2000).round(2)  # rounding creates ties, broken by noun index
    scores[rng.choice(2000, 50, replace=False)] = np.inf  # never selected
    assign = rng.integers(0, 37, 2000)
    selected = select_top_k_per_center(scores, assign, top_k)
    np.testing.assert_array_equal(
        selected, reference_select_top_k_per_center(scores, assign, top_k)
    )
    assert len(set(selected.tolist())) == selected.size
    for k in np.unique(assign):
        members = np.flatnonzero((assign == k) & np.isfinite(scores))
        kept = selected[assign[selected] == k]
        assert kept.size == min(top_k, members.size)
        others = np.setdiff1d(members, kept)
        if others.size and kept.size:
            assert scores[kept].max() <= scores[others].min()


def test_sic_drops_generic_nouns_and_ranks_by_similarity():
    rng = np.random.default_rng(6)
    W = random_unit_rows(rng, 4, 8)
    E = random_unit_rows(rng, 100, 8)
    mean = E.mean(0) / np.linalg.norm(E.mean(0))
    scores, assign = sic_scores(E, W, uniqueness_threshold=0.5)
    np.testing.assert_array_equal(np.isinf(scores), E @ mean >= 0.5)
    finite = np.isfinite(scores)
    np.testing.assert_allclose(scores[finite], -(E @ W.T).max(1)[finite], rtol=1e-12)


def test_text_counterparts_equal_reference_and_are_unit():
    rng = np.random.default_rng(7)
    U, E = random_unit_rows(rng, 80, 16), random_unit_rows(rng, 30, 16)
    for chunk in (1, 13, None):
        T = text_counterparts(U, E, temperature=0.01, chunk_size=chunk)
        np.testing.assert_allclose(
            T, reference_text_counterparts(U, E, temperature=0.01), atol=1e-12
        )
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0)


def test_torch_tensor_inputs_give_the_same_scores():
    rng = np.random.default_rng(8)
    E, W = random_unit_rows(rng, 40, 8), random_unit_rows(rng, 5, 8)
    s_np, a_np = gradnorm_scores(E, W, temperature=0.1)
    s_t, a_t = gradnorm_scores(torch.as_tensor(E), torch.as_tensor(W), temperature=0.1)
    np.testing.assert_allclose(s_t, s_np, rtol=1e-12)
    np.testing.assert_array_equal(a_t, a_np)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(temperature=0.0), ValueError, "'temperature' parameter .* range \\(0.0, inf\\)"),
        (dict(temperature=-1.0), ValueError, "'temperature' parameter .* range \\(0.0, inf\\)"),
        (dict(temperature="hot"), TypeError, "'temperature' parameter .* Got 'hot'"),
        (dict(temperature=0.1, p=0.5), ValueError, "'p' parameter .* range \\[1.0, inf\\)"),
        (dict(temperature=0.1, p=np.nan), ValueError, "'p' parameter .* Got nan"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, error, match):
    E = np.eye(3)
    with pytest.raises(error, match=match):
        gradnorm_scores(E, E, **kwargs)


def test_bad_arrays_are_rejected_with_their_name():
    good = np.eye(4)
    with pytest.raises(ValueError, match="noun_embeddings has 4 features but centers has 3"):
        gradnorm_scores(good, np.eye(3), temperature=0.1)
    with pytest.raises(ValueError, match="noun_embeddings.*NaN"):
        gradnorm_scores(np.full((2, 4), np.nan), good, temperature=0.1)
    with pytest.raises(ValueError, match="centers.*infinity"):
        gradnorm_scores(good, np.full((2, 4), np.inf), temperature=0.1)
    with pytest.raises(ValueError, match="noun_embeddings must be a 2-D array"):
        gradnorm_scores(np.ones(4), good, temperature=0.1)
    with pytest.raises(ValueError, match="noun_embeddings is empty"):
        gradnorm_scores(np.ones((0, 4)), good, temperature=0.1)


def test_l2_normalize_rows_matches_numpy_and_checks_every_row():
    from skgradnorm._utils._validation import l2_normalize_rows

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        X = rng.standard_normal((300, 17)).astype(dtype)
        expected = X / np.linalg.norm(X, axis=1, keepdims=True)
        out = l2_normalize_rows(X, name="X")
        assert out.dtype == dtype and not np.shares_memory(out, X)
        np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-12)
        rows = np.array([3, 5, 299])
        X_before = X.copy()
        np.testing.assert_allclose(
            l2_normalize_rows(X, name="X", rows=rows), expected[rows], rtol=1e-6
        )
        np.testing.assert_array_equal(X, X_before)  # the input is never modified
    X[7] = 0
    with pytest.raises(ValueError, match="X has 1 row.*zero norm.*index 7"):
        l2_normalize_rows(X, name="X", rows=np.array([0, 1]))


# --------------------------------------------------------------------------- tiny temperatures


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_log_scores_are_the_log_of_the_scores(p):
    rng = np.random.default_rng(3)
    E, W = unit(rng.normal(size=(200, 12))), unit(rng.normal(size=(15, 12)))
    scores, assignments, log_scores = gradnorm_scores(E, W, temperature=0.07, p=p, return_log=True)
    ref, ref_assignments = reference_gradnorm_scores(E, W, temperature=0.07, p=p)
    np.testing.assert_array_equal(assignments, ref_assignments)
    np.testing.assert_allclose(log_scores, np.log(ref), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_scores), scores, rtol=1e-12)


def test_float32_log_scores_stay_exact_where_scores_underflow():
    # At T = 1e-3 in float32 many scores underflow to exactly 0; their logs must still
    # match the float64 computation, which represents them.
    rng = np.random.default_rng(0)
    E, W = unit(rng.normal(size=(300, 16))), unit(rng.normal(size=(20, 16)))
    s32, a32, log32 = gradnorm_scores(
        E.astype(np.float32), W.astype(np.float32), temperature=1e-3, return_log=True
    )
    _, a64, log64 = gradnorm_scores(E, W, temperature=1e-3, return_log=True)
    assert (s32 == 0).sum() > 50  # the regime the log scores are for
    np.testing.assert_array_equal(a32, a64)
    # float32 logits z / T carry an absolute error of about eps32 / T (1e-4 here)
    np.testing.assert_allclose(log32, log64, rtol=1e-5, atol=5e-4)
    # ranking by (score, log score) in float32 selects what float64 selects
    kept32 = select_top_k_per_center(s32, a32, 3, tiebreak=log32)
    kept64 = select_top_k_per_center(np.exp(log64), a64, 3, tiebreak=log64)
    np.testing.assert_array_equal(kept32, kept64)


def test_select_top_k_breaks_equal_scores_with_the_tiebreak():
    scores = np.array([0.0, 0.0, 0.0, 0.5])
    assignments = np.array([0, 0, 0, 0])
    np.testing.assert_array_equal(select_top_k_per_center(scores, assignments, 2), [0, 1])
    kept = select_top_k_per_center(scores, assignments, 2, tiebreak=np.array([-1, -9, -5, 0]))
    np.testing.assert_array_equal(kept, [1, 2])


@pytest.mark.parametrize(
    "dtype, tau", [(np.float32, 1e-39), (np.float64, 1e-310), (np.float32, 1e-310)]
)
def test_retrieval_at_temperatures_near_the_smallest_floats(dtype, tau):
    # The limit tau -> 0 of the softmax retrieval is the nearest noun itself.
    rng = np.random.default_rng(1)
    U, E = unit(rng.normal(size=(30, 8))), unit(rng.normal(size=(50, 8)))
    T = text_counterparts(U.astype(dtype), E.astype(dtype), temperature=tau)
    assert np.isfinite(T).all()
    nearest = E[np.argmax(U @ E.T, axis=1)]
    np.testing.assert_allclose(T, nearest, atol=1e-6)


def test_scores_at_temperatures_near_the_smallest_floats():
    rng = np.random.default_rng(2)
    E, W = unit(rng.normal(size=(40, 8))), unit(rng.normal(size=(6, 8)))
    scores, assignments, log_scores = gradnorm_scores(E, W, temperature=1e-310, return_log=True)
    assert not np.isnan(scores).any() and not np.isnan(log_scores).any()
    np.testing.assert_array_equal(assignments, np.argmax(E @ W.T, axis=1))
