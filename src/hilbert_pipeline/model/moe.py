"""Classifier heads: the mixture of experts of docs/model.md and a plain MLP (ablation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _expert(in_dim: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_classes))


class MoEClassifier(nn.Module):
    """K expert MLPs mixed by a softmax gate: ``logits = sum_k g_k(x) E_k(x)``.

    Gate: ``softmax(W_g x)``; with ``top_k`` the gate keeps the k largest gate logits per row and
    renormalises the softmax over them (the rest are exactly 0, so each row has exactly k
    non-zero weights; ties are broken by :func:`torch.topk`'s index order). All experts are
    evaluated densely: with K of 2-8 small MLPs and batches of tens of documents, sparse dispatch
    would cost more than it saves, and a zero weight already gives the unselected experts zero
    gradient from that row.

    Load balancing (Switch Transformer, Fedus et al. 2022): ``L_lb = K * sum_k f_k P_k`` where
    ``f_k`` is the fraction of rows routed to expert k (top-1 = argmax of the gate; with top-k,
    each row counts 1/k for each of its k experts) and ``P_k`` the mean *full* softmax gate
    probability of expert k. ``f`` is a count (no gradient); the gradient flows through ``P``.
    The term equals 1 when routing is uniform and grows to K when one expert takes every row.
    """

    def __init__(self, in_dim: int, n_classes: int, n_experts: int = 4, hidden: int = 256,
                 top_k: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        if top_k is not None and not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be in [1, n_experts={n_experts}], got {top_k}")
        self.n_experts = n_experts
        self.top_k = top_k
        self.gate = nn.Linear(in_dim, n_experts)
        self.experts = nn.ModuleList(
            _expert(in_dim, hidden, n_classes, dropout) for _ in range(n_experts))

    def output_layers(self) -> list[nn.Linear]:
        """The layers that produce the logits (one per expert)."""
        return [e[-1] for e in self.experts]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(logits (B, C), gate (B, K), lb_loss scalar)``."""
        gate_logits = self.gate(x)
        probs = torch.softmax(gate_logits, dim=-1)
        k = self.top_k if self.top_k is not None else self.n_experts
        if k < self.n_experts:
            idx = gate_logits.topk(k, dim=-1).indices
            keep = torch.zeros_like(gate_logits, dtype=torch.bool).scatter_(-1, idx, True)
            gate = torch.softmax(gate_logits.masked_fill(~keep, float("-inf")), dim=-1)
            routed = keep.to(x.dtype) / k
        else:
            gate = probs
            routed = F.one_hot(probs.argmax(dim=-1), self.n_experts).to(x.dtype)
        outs = torch.stack([e(x) for e in self.experts], dim=1)  # (B, K, C)
        logits = (gate.unsqueeze(-1) * outs).sum(dim=1)
        f = routed.mean(dim=0).detach()
        p = probs.mean(dim=0)
        lb = self.n_experts * (f * p).sum()
        return logits, gate, lb


class MLPClassifier(nn.Module):
    """One expert without a gate (the "MLP head" ablation); same return signature as MoE.

    The gate is a column of ones (B, 1) and the load-balancing term is a constant 0 (the loss
    skips it for this head).
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.net = _expert(in_dim, hidden, n_classes, dropout)

    def output_layers(self) -> list[nn.Linear]:
        """The layer that produces the logits."""
        return [self.net[-1]]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, x.new_ones(x.shape[0], 1), x.new_zeros(())
