"""TAC's cluster heads: the mutual-distillation loss, the training loop and inference.

Restated from TAC (Li et al., "Image Clustering with External Guidance", ICML 2024,
arXiv:2310.11989): two heads of the same shape map an image embedding ``u`` and its text
counterpart ``t`` to soft cluster assignments; each head is taught by the other modality's
assignments of a nearest neighbour (cluster-level contrast), the two heads are asked to
agree on the same sample (consistency), and the batch-mean assignment is kept spread out
(entropy). No I/O here: the estimator (:mod:`skgradnorm._mutual_distillation`) trains with it.

With ``P`` a batch of probabilities (``batch x K``) and ``P^n`` those of a neighbour, the loss
of one batch is::

    D(P_img, P_txt^n) + D(P_txt, P_img^n) + C(P_txt, P_img) - w [H(P_txt) + H(P_img)]

- ``D(P, Q)``: the ``2K`` columns of ``[P, Q]`` are L2-normalised; their cosines over a
  temperature are logits; the positive of column ``k`` of ``P`` is column ``k`` of ``Q`` (and
  back), every other column but itself is a negative; cross-entropy summed over the ``2K``
  columns, divided by ``2K``.
- ``C(P, Q) = -mean_i log <p_i, q_i>`` (the log floored at -100, like torch's binary
  cross-entropy, which TAC's code uses for it).
- ``H(P)``: the entropy of the batch-mean assignment, clamped at ``1e-9`` inside the log.

The training loop follows TAC's ``train_head.py``, restated: every epoch visits the samples
in a random order in batches (the last incomplete batch is dropped), pairs each sample with
one of its image neighbours and one of its text neighbours drawn at random, runs both heads
on the samples and, in a second pass (so with its own batch-norm statistics), on the
neighbours, and takes one Adam step on :func:`mutual_distillation_loss`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._utils._torch import iter_chunks

__all__ = [
    "batch_entropy",
    "cluster_contrast",
    "cluster_head",
    "consistency",
    "head_probabilities",
    "fit_heads_to_labels",
    "mutual_distillation_loss",
    "new_heads",
    "size_prior",
    "train_heads",
]

# torch's binary_cross_entropy floors log at -100; TAC's consistency term is that loss.
_LOG_FLOOR = -100.0


def cluster_head(n_features: int, n_clusters: int, hidden: int | None = None) -> nn.Sequential:
    """TAC's cluster head: ``Linear -> BatchNorm1d -> ReLU -> Linear -> softmax``.

    The two linear weights are drawn from a normal of standard deviation 0.02 truncated to
    ``[-2, 2]`` (``torch.nn.init.trunc_normal_``'s bounds, the same as timm's, which TAC
    uses); biases and the batch norm keep torch's default initialisation. Draws from torch's
    global generator: seed it (or fork it) around the call for reproducible weights.
    """
    hidden = n_features if hidden is None else hidden
    head = nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_clusters),
        nn.Softmax(dim=1),
    )
    nn.init.trunc_normal_(head[0].weight, std=0.02)
    nn.init.trunc_normal_(head[3].weight, std=0.02)
    return head


def cluster_contrast(P: torch.Tensor, Q: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cluster-level contrast ``D(P, Q)`` of two ``(batch, K)`` assignment matrices.

    The ``2K`` columns of ``P`` and ``Q`` are L2-normalised; logits are their cosines divided
    by ``temperature``, each column's own cosine left out; column ``k`` of ``P`` has column
    ``k`` of ``Q`` as its positive and vice versa. Returns the cross-entropy summed over the
    ``2K`` columns, divided by ``2K``.
    """
    K = P.shape[1]
    C = F.normalize(torch.cat([P.T, Q.T], dim=0), dim=1)
    logits = (C @ C.T) / temperature
    eye = torch.eye(2 * K, dtype=torch.bool, device=P.device)
    logits = logits.masked_fill(eye, float("-inf"))
    twin = torch.cat([torch.arange(K, 2 * K), torch.arange(K)]).to(P.device)
    return F.cross_entropy(logits, twin, reduction="sum") / (2 * K)


def consistency(P: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """``-mean_i log <p_i, q_i>``: the two heads agree on each sample (log floored at -100)."""
    agreement = (P * Q).sum(dim=1)
    return -torch.clamp(torch.log(agreement), min=_LOG_FLOOR).mean()


def batch_entropy(P: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy of the batch-mean assignment, ``-sum_k m_k log m_k`` with ``m`` clamped at 1e-9.

    With a ``prior`` (cluster shares summing to 1), minus the Kullback-Leibler divergence
    ``-sum_k m_k log(m_k / prior_k)`` instead: the same as the entropy up to the constant
    ``log K`` for an equal prior, and pulling ``m`` towards ``prior`` otherwise.
    """
    m = torch.clamp(P.mean(dim=0), min=1e-9)
    if prior is None:
        return -(m * torch.log(m)).sum()
    return -(m * (torch.log(m) - torch.log(prior))).sum()


def size_prior(labels, n_clusters: int, rule, like: torch.Tensor):
    """The prior of :func:`batch_entropy` (dtype and device of ``like``): None for
    ``rule="equal"`` or no ``labels`` (TAC's entropy); otherwise ``a`` times the cluster
    shares of ``labels`` plus ``1 - a`` times equal shares (``a`` = 1 for ``"init"`` and
    ``"auto"``, else the float ``rule``), floored at 1e-6 and summing to 1."""
    if rule == "equal" or labels is None:
        return None
    a = 1.0 if rule in ("auto", "init") else float(rule)
    counts = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    shares = np.maximum(a * counts / counts.sum() + (1 - a) / n_clusters, 1e-6)
    return torch.as_tensor(shares / shares.sum(), dtype=like.dtype, device=like.device)


def mutual_distillation_loss(
    p_img: torch.Tensor,
    p_txt: torch.Tensor,
    p_img_neighbor: torch.Tensor,
    p_txt_neighbor: torch.Tensor,
    *,
    temperature: float,
    entropy_weight: float = 5.0,
    prior: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """TAC's loss of one batch, and its three parts (detached floats).

    Parameters
    ----------
    p_img, p_txt : torch.Tensor of shape (batch, K)
        The image head's assignments of the images and the text head's of their text
        counterparts.
    p_img_neighbor, p_txt_neighbor : torch.Tensor of shape (batch, K)
        The image head's assignments of an image neighbour of each sample, and the text
        head's of a text neighbour.
    temperature : float
        Temperature of the cluster-level contrast.
    entropy_weight : float, default=5.0
        Weight ``w`` of the entropy term (TAC: 5).

    Returns
    -------
    loss : torch.Tensor (scalar)
        ``D(P_img, P_txt^n) + D(P_txt, P_img^n) + C - w [H(P_txt) + H(P_img)]``.
    parts : dict
        ``"distill"``, ``"consistency"``, ``"entropy"`` as Python floats.
    """
    distill = cluster_contrast(p_img, p_txt_neighbor, temperature) + cluster_contrast(
        p_txt, p_img_neighbor, temperature
    )
    consist = consistency(p_txt, p_img)
    entropy = batch_entropy(p_txt, prior) + batch_entropy(p_img, prior)
    loss = distill + consist - entropy_weight * entropy
    parts = {
        "distill": float(distill.detach()),
        "consistency": float(consist.detach()),
        "entropy": float(entropy.detach()),
    }
    return loss, parts


def _draw_neighbors(neighbors: np.ndarray, rng: np.random.RandomState, device) -> torch.Tensor:
    """One neighbour per sample, uniformly among its candidates (a row of ``neighbors``)."""
    n, k = neighbors.shape
    pick = neighbors[np.arange(n), rng.randint(k, size=n)]
    return torch.from_numpy(pick.astype(np.int64, copy=False)).to(device)


def fit_heads_to_labels(
    heads,
    inputs,
    labels: torch.Tensor,
    *,
    n_epochs: int,
    batch_size: int,
    learning_rate: float,
    betas: tuple[float, float],
    weight_decay: float,
    rng: np.random.RandomState,
) -> list:
    """Warm start (not TAC's): fit every head to ``labels`` by cross-entropy.

    Each head of ``heads`` sees its own input of ``inputs`` (same rows); every epoch visits
    the samples in an order drawn from ``rng``, in batches (the last incomplete one
    dropped), with one Adam step (its own optimizer, discarded afterwards) on the sum of the
    heads' mean negative log-likelihoods of ``labels`` (log floored at -100). Returns the
    mean batch loss of every epoch.
    """
    params = [p for head in heads for p in head.parameters()]
    optimizer = torch.optim.Adam(
        params, lr=learning_rate, betas=tuple(betas), weight_decay=weight_decay
    )
    n = labels.shape[0]
    n_steps = n // batch_size
    curve = []
    for _ in range(n_epochs):
        order = torch.from_numpy(rng.permutation(n)).to(labels.device)
        total = 0.0
        for step in range(n_steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            loss = sum(
                F.nll_loss(torch.clamp(torch.log(head(X[idx])), min=_LOG_FLOOR), labels[idx])
                for head, X in zip(heads, inputs, strict=True)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        curve.append(total / n_steps)
    return curve


def new_heads(n_features: int, n_clusters: int, rng: np.random.RandomState, device, dtype):
    """An image head and a text head (:func:`cluster_head`), in training mode on ``device``.

    Their initial weights come from a torch generator seeded by one draw from ``rng``, on the
    CPU (torch's global generator is left as it was).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        heads = (cluster_head(n_features, n_clusters), cluster_head(n_features, n_clusters))
    return tuple(head.to(device=device, dtype=dtype).train() for head in heads)


def train_heads(
    U: torch.Tensor,
    T: torch.Tensor,
    image_neighbors: np.ndarray,
    text_neighbors: np.ndarray,
    n_clusters: int,
    *,
    n_epochs: int,
    batch_size: int,
    temperature: float,
    entropy_weight: float,
    learning_rate: float,
    betas: tuple[float, float],
    weight_decay: float,
    rng: np.random.RandomState,
    verbose: bool = False,
    heads=None,
    prior: torch.Tensor | None = None,
):
    """Train the image head and the text head on ``U`` and ``T`` (same device, float).

    ``heads``: the ``(image_head, text_head)`` to start from (trained in place), e.g. after
    :func:`fit_heads_to_labels`; None draws new ones with :func:`new_heads` (TAC). The batch
    orders and the neighbour draws come from ``rng``, so one ``rng`` state gives one result
    on a given device and thread count. Adam starts afresh either way.

    Returns
    -------
    image_head, text_head : torch.nn.Sequential
        The trained heads, in eval mode, on ``U``'s device.
    loss_curve : list of float
        The mean batch loss of every epoch.
    """
    device = U.device
    n, d = U.shape
    if heads is None:
        heads = new_heads(d, n_clusters, rng, device, U.dtype)
    image_head, text_head = (head.train() for head in heads)
    params = [*image_head.parameters(), *text_head.parameters()]
    optimizer = torch.optim.Adam(
        params, lr=learning_rate, betas=tuple(betas), weight_decay=weight_decay
    )
    n_steps = n // batch_size
    loss_curve = []
    for epoch in range(n_epochs):
        order = torch.from_numpy(rng.permutation(n)).to(device)
        image_pick = _draw_neighbors(image_neighbors, rng, device)
        text_pick = _draw_neighbors(text_neighbors, rng, device)
        total = 0.0
        bar = tqdm(
            range(n_steps),
            desc=f"epoch {epoch + 1}/{n_epochs}",
            disable=not verbose,
            leave=True,
        )
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            p_txt, p_img = text_head(T[idx]), image_head(U[idx])
            p_txt_nb = text_head(T[text_pick[idx]])
            p_img_nb = image_head(U[image_pick[idx]])
            loss, _ = mutual_distillation_loss(
                p_img,
                p_txt,
                p_img_nb,
                p_txt_nb,
                temperature=temperature,
                entropy_weight=entropy_weight,
                prior=prior,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            bar.set_postfix(loss=f"{total / (step + 1):.4f}", refresh=False)
        bar.set_postfix(loss=f"{total / n_steps:.4f}")
        bar.close()
        loss_curve.append(total / n_steps)
    return image_head.eval(), text_head.eval(), loss_curve


def head_probabilities(head: torch.nn.Module, X: torch.Tensor, chunk_size: int = 65536):
    """The head's cluster probabilities of every row of ``X``, in eval mode, chunk by chunk."""
    head.eval()
    out = torch.empty((X.shape[0], head[3].out_features), dtype=X.dtype, device=X.device)
    with torch.no_grad():
        for sl in iter_chunks(X.shape[0], chunk_size):
            out[sl] = head(X[sl])
    return out
