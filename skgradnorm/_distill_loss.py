"""TAC's cluster heads and cross-modal mutual-distillation loss, as plain torch math.

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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "batch_entropy",
    "cluster_contrast",
    "cluster_head",
    "consistency",
    "mutual_distillation_loss",
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


def batch_entropy(P: torch.Tensor) -> torch.Tensor:
    """Entropy of the batch-mean assignment, ``-sum_k m_k log m_k`` with ``m`` clamped at 1e-9."""
    m = torch.clamp(P.mean(dim=0), min=1e-9)
    return -(m * torch.log(m)).sum()


def mutual_distillation_loss(
    p_img: torch.Tensor,
    p_txt: torch.Tensor,
    p_img_neighbor: torch.Tensor,
    p_txt_neighbor: torch.Tensor,
    *,
    temperature: float,
    entropy_weight: float = 5.0,
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
    entropy = batch_entropy(p_txt) + batch_entropy(p_img)
    loss = distill + consist - entropy_weight * entropy
    parts = {
        "distill": float(distill.detach()),
        "consistency": float(consist.detach()),
        "entropy": float(entropy.detach()),
    }
    return loss, parts
