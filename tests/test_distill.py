"""TAC's mutual-distillation loss and heads against plain, slow restatements.

The references below are written from the definitions (loops over columns and samples, in
numpy float64), not from the torch code: the loss must equal them on random inputs, its
gradient must equal their finite differences, and one training step must move every weight
the way Adam's first step does with that finite-difference gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skgradnorm._distill import (
    batch_entropy,
    cluster_contrast,
    cluster_head,
    consistency,
    fit_heads_to_labels,
    mutual_distillation_loss,
    new_heads,
    train_heads,
)

# -- slow references ---------------------------------------------------------------------


def slow_contrast(P, Q, tau):
    K = P.shape[1]
    cols = [P[:, k] for k in range(K)] + [Q[:, k] for k in range(K)]
    cols = [c / np.sqrt(np.sum(c * c)) for c in cols]
    total = 0.0
    for a in range(2 * K):
        twin = a + K if a < K else a - K
        logits = {b: float(np.dot(cols[a], cols[b])) / tau for b in range(2 * K) if b != a}
        denom = sum(np.exp(v) for v in logits.values())
        total += -(logits[twin] - np.log(denom))
    return total / (2 * K)


def slow_consistency(P, Q):
    return -np.mean([max(np.log(np.dot(p, q)), -100.0) for p, q in zip(P, Q, strict=True)])


def slow_entropy(P):
    m = np.maximum(P.mean(axis=0), 1e-9)
    return -sum(mk * np.log(mk) for mk in m)


def slow_loss(p_img, p_txt, p_img_nb, p_txt_nb, tau, w):
    return (
        slow_contrast(p_img, p_txt_nb, tau)
        + slow_contrast(p_txt, p_img_nb, tau)
        + slow_consistency(p_txt, p_img)
        - w * (slow_entropy(p_txt) + slow_entropy(p_img))
    )


def slow_head(params, X):
    """Linear -> BatchNorm1d (training mode: this batch's mean and biased variance) -> ReLU ->
    Linear -> softmax, in numpy."""
    W1, b1, gamma, beta, W2, b2 = params
    H = X @ W1.T + b1
    H = (H - H.mean(axis=0)) / np.sqrt(H.var(axis=0) + 1e-5) * gamma + beta
    Z = np.maximum(H, 0) @ W2.T + b2
    Z = np.exp(Z - Z.max(axis=1, keepdims=True))
    return Z / Z.sum(axis=1, keepdims=True)


def random_probabilities(rng, n, K, sharp=1.0):
    Z = np.exp(sharp * rng.normal(size=(n, K)))
    return Z / Z.sum(axis=1, keepdims=True)


# -- the loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("K,n,tau", [(1, 5, 0.5), (3, 7, 0.5), (6, 16, 5.0), (10, 4, 0.1)])
def test_loss_equals_slow_restatement(seed, K, n, tau):
    rng = np.random.default_rng(seed)
    ps = [random_probabilities(rng, n, K, sharp=3.0) for _ in range(4)]
    loss, parts = mutual_distillation_loss(
        *(torch.from_numpy(p) for p in ps), temperature=tau, entropy_weight=5.0
    )
    expected = slow_loss(*ps, tau, 5.0)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        parts["distill"],
        slow_contrast(ps[0], ps[3], tau) + slow_contrast(ps[1], ps[2], tau),
        rtol=1e-12,
    )
    np.testing.assert_allclose(parts["consistency"], slow_consistency(ps[1], ps[0]), rtol=1e-12)
    np.testing.assert_allclose(
        parts["entropy"], slow_entropy(ps[1]) + slow_entropy(ps[0]), rtol=1e-12
    )


def test_terms_hit_their_floors_and_bounds():
    one_hot = torch.eye(4, dtype=torch.float64)
    # disjoint one-hot rows: the log of a zero agreement is floored at -100, like torch's BCE
    assert float(consistency(one_hot, one_hot.roll(1, dims=1))) == pytest.approx(100.0)
    assert float(consistency(one_hot, one_hot)) == pytest.approx(0.0)
    # a batch spread over all clusters has the largest entropy, a collapsed one none
    assert float(batch_entropy(one_hot)) == pytest.approx(np.log(4))
    assert float(batch_entropy(one_hot[[0, 0, 0, 0]])) == pytest.approx(0.0, abs=1e-6)
    # with a prior: minus the KL divergence of the batch mean from it (numpy reference);
    # an equal prior is the entropy less log K, a prior equal to the batch mean is 0
    P = torch.softmax(torch.randn(16, 4, dtype=torch.float64), dim=1)
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    m = P.mean(dim=0).numpy()
    reference = -np.sum(m * np.log(m / prior.numpy()))
    assert float(batch_entropy(P, prior)) == pytest.approx(reference, rel=1e-12)
    equal = torch.full((4,), 0.25, dtype=torch.float64)
    assert float(batch_entropy(P, equal)) == pytest.approx(float(batch_entropy(P)) - np.log(4))
    assert float(batch_entropy(P, P.mean(dim=0))) == pytest.approx(0.0, abs=1e-12)
    # twin columns identical and orthogonal to the rest: the contrast's smallest value
    tau = 0.5
    best = np.log(1 + 6 * np.exp(-1 / tau))  # 2K-2 = 6 negatives at cosine 0
    assert float(cluster_contrast(one_hot, one_hot, tau)) == pytest.approx(best)


def test_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    ps = tuple(torch.from_numpy(random_probabilities(rng, 6, 3)).requires_grad_() for _ in range(4))

    def f(*p):
        return mutual_distillation_loss(*p, temperature=0.5)[0]

    assert torch.autograd.gradcheck(f, ps, eps=1e-6, atol=1e-7)


# -- the heads and one training step -----------------------------------------------------


def test_head_shape_and_initialisation():
    torch.manual_seed(0)
    head = cluster_head(64, 7)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "Softmax"]
    assert head[0].weight.shape == (64, 64) and head[3].weight.shape == (7, 64)
    w = torch.cat([head[0].weight.flatten(), head[3].weight.flatten()]).detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and float(w.abs().max()) <= 2.0
    out = head(torch.randn(5, 64))
    torch.testing.assert_close(out.sum(dim=1), torch.ones(5))


def _params(head):
    return [
        head[0].weight.detach().double().numpy().copy(),
        head[0].bias.detach().double().numpy().copy(),
        head[1].weight.detach().double().numpy().copy(),
        head[1].bias.detach().double().numpy().copy(),
        head[3].weight.detach().double().numpy().copy(),
        head[3].bias.detach().double().numpy().copy(),
    ]


def test_one_training_step_is_adams_first_step_on_the_finite_difference_gradient():
    n, d, K, k, lr, tau, w = 8, 4, 3, 3, 1e-3, 0.5, 5.0
    rng = np.random.default_rng(1)
    U = rng.normal(size=(n, d))
    T = rng.normal(size=(n, d))
    nb_img = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    nb_txt = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])

    # What train_heads will draw from the same random state, replayed by hand.
    replay = np.random.RandomState(0)
    seed = int(replay.randint(np.iinfo(np.int32).max))
    order = replay.permutation(n)
    pick_img = nb_img[np.arange(n), replay.randint(k, size=n)]
    pick_txt = nb_txt[np.arange(n), replay.randint(k, size=n)]
    torch.manual_seed(seed)
    start = _params(cluster_head(d, K)) + _params(cluster_head(d, K))  # image, then text

    def loss_of(flat):
        ps, pos = [], 0
        for p in start:
            ps.append(flat[pos : pos + p.size].reshape(p.shape))
            pos += p.size
        img, txt = ps[:6], ps[6:]
        return slow_loss(
            slow_head(img, U[order]),
            slow_head(txt, T[order]),
            slow_head(img, U[pick_img[order]]),
            slow_head(txt, T[pick_txt[order]]),
            tau,
            w,
        )

    x0 = np.concatenate([p.ravel() for p in start])
    h = 1e-6
    grad = np.array(
        [(loss_of(x0 + h * e) - loss_of(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)]
    )

    image_head, text_head, curve = train_heads(
        torch.from_numpy(U),
        torch.from_numpy(T),
        nb_img,
        nb_txt,
        K,
        n_epochs=1,
        batch_size=n,
        temperature=tau,
        entropy_weight=w,
        learning_rate=lr,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        rng=np.random.RandomState(0),
    )
    assert curve[0] == pytest.approx(loss_of(x0), rel=1e-10)
    after = np.concatenate([p.ravel() for p in _params(image_head) + _params(text_head)])
    step = after - x0
    # Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2.
    expected = -lr * grad / (np.abs(grad) + 1e-8)
    clear = np.abs(grad) > 1e-5  # where the finite difference fixes the sign and size
    assert clear.sum() > x0.size // 2
    np.testing.assert_allclose(step[clear], expected[clear], rtol=1e-4, atol=1e-9)
    assert np.all(np.abs(step) <= lr * (1 + 1e-6))


# -- the warm start (not TAC's): cross-entropy on given labels ---------------------------


def test_warm_start_step_is_adams_first_step_on_the_finite_difference_gradient():
    n, d, K, lr = 8, 4, 3, 1e-3
    rng = np.random.default_rng(2)
    U, T = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    labels = rng.integers(K, size=n)
    torch.manual_seed(3)
    heads = (cluster_head(d, K).double(), cluster_head(d, K).double())
    start = _params(heads[0]) + _params(heads[1])
    order = np.random.RandomState(0).permutation(n)  # what the warm start draws

    def loss_of(flat):
        ps, pos = [], 0
        for p in start:
            ps.append(flat[pos : pos + p.size].reshape(p.shape))
            pos += p.size
        total = 0.0
        for params, X in ((ps[:6], U), (ps[6:], T)):
            P = slow_head(params, X[order])
            total += -np.mean(np.log(P[np.arange(n), labels[order]]))
        return total

    x0 = np.concatenate([p.ravel() for p in start])
    h = 1e-6
    grad = np.array(
        [(loss_of(x0 + h * e) - loss_of(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)]
    )
    curve = fit_heads_to_labels(
        heads,
        (torch.from_numpy(U), torch.from_numpy(T)),
        torch.from_numpy(labels),
        n_epochs=1,
        batch_size=n,
        learning_rate=lr,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        rng=np.random.RandomState(0),
    )
    assert curve[0] == pytest.approx(loss_of(x0), rel=1e-10)
    step = np.concatenate([p.ravel() for p in _params(heads[0]) + _params(heads[1])]) - x0
    expected = -lr * grad / (np.abs(grad) + 1e-8)
    clear = np.abs(grad) > 1e-5
    assert clear.sum() > x0.size // 2
    np.testing.assert_allclose(step[clear], expected[clear], rtol=1e-4, atol=1e-9)


def test_warm_start_teaches_the_heads_the_labels_and_new_heads_are_tacs_draw():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    n, d, K = 240, 8, 4
    labels = rng.integers(K, size=n)
    U = torch.from_numpy(rng.normal(size=(n, d)) + 6 * np.eye(d)[labels]).float()
    T = torch.from_numpy(rng.normal(size=(n, d)) + 6 * np.eye(d)[labels + K]).float()
    heads = new_heads(d, K, np.random.RandomState(0), "cpu", torch.float32)
    curve = fit_heads_to_labels(
        heads,
        (U, T),
        torch.from_numpy(labels),
        n_epochs=20,
        batch_size=60,
        learning_rate=1e-2,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        rng=np.random.RandomState(1),
    )
    assert len(curve) == 20 and curve[-1] < curve[0]
    for head, X in zip(heads, (U, T), strict=True):
        with torch.no_grad():
            assert adjusted_rand_score(labels, head.eval()(X).argmax(dim=1).numpy()) > 0.95
    # train_heads without heads draws them with new_heads from the same rng: same run
    neighbors = np.stack([rng.choice(np.delete(np.arange(n), i), 5) for i in range(n)])
    common = dict(
        n_epochs=2,
        batch_size=60,
        temperature=0.5,
        entropy_weight=5.0,
        learning_rate=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.0,
    )
    rs = np.random.RandomState(3)
    given = new_heads(d, K, rs, "cpu", torch.float32)
    a = train_heads(U, T, neighbors, neighbors, K, rng=rs, heads=given, **common)
    b = train_heads(U, T, neighbors, neighbors, K, rng=np.random.RandomState(3), **common)
    assert a[2] == b[2]
    for x, y in zip(a[0].state_dict().values(), b[0].state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
