"""The training loop of TAC's two cluster heads (mutual distillation), and their inference.

The loop follows TAC's ``train_head.py`` (Li et al., ICML 2024, arXiv:2310.11989), restated:
every epoch visits the samples in a random order in batches (the last incomplete batch is
dropped), pairs each sample with one of its image neighbours and one of its text
neighbours drawn at random, runs both heads on the samples and, in a second pass (so with
its own batch-norm statistics), on the neighbours, and takes one Adam step on
:func:`~skgradnorm._distill_loss.mutual_distillation_loss`.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ._distill_loss import cluster_head, mutual_distillation_loss
from ._utils._torch import iter_chunks

__all__ = ["head_probabilities", "train_heads"]


def _draw_neighbors(neighbors: np.ndarray, rng: np.random.RandomState, device) -> torch.Tensor:
    """One neighbour per sample, uniformly among its candidates (a row of ``neighbors``)."""
    n, k = neighbors.shape
    pick = neighbors[np.arange(n), rng.randint(k, size=n)]
    return torch.from_numpy(pick.astype(np.int64, copy=False)).to(device)


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
):
    """Train the image head and the text head on ``U`` and ``T`` (same device, float).

    The heads' initial weights are drawn from a torch generator seeded by ``rng``, on the CPU,
    and moved to ``U``'s device; the batch orders and the neighbour draws come from ``rng``.
    So one ``rng`` state gives one result on a given device and thread count.

    Returns
    -------
    image_head, text_head : torch.nn.Sequential
        The trained heads, in eval mode, on ``U``'s device.
    loss_curve : list of float
        The mean batch loss of every epoch.
    """
    device = U.device
    n, d = U.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        image_head = cluster_head(d, n_clusters)
        text_head = cluster_head(d, n_clusters)
    image_head.to(device=device, dtype=U.dtype).train()
    text_head.to(device=device, dtype=U.dtype).train()
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
