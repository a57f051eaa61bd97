"""MoEClassifier: gate normalisation, top-k sparsity, mixture and load balancing."""

from __future__ import annotations

import pytest
import torch

from hilbert_pipeline.model import MLPClassifier, MoEClassifier


def _x(b=32, d=10, seed=0):
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def test_dense_gate_rows_sum_to_one():
    torch.manual_seed(0)
    moe = MoEClassifier(10, 3, n_experts=4, hidden=8, dropout=0.0)
    logits, gate, lb = moe(_x())
    assert logits.shape == (32, 3) and gate.shape == (32, 4) and lb.dim() == 0
    assert torch.allclose(gate.sum(1), torch.ones(32), atol=1e-6)
    assert (gate > 0).all()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_keeps_exactly_k_renormalised(k):
    torch.manual_seed(1)
    moe = MoEClassifier(10, 3, n_experts=4, hidden=8, top_k=k, dropout=0.0)
    x = _x(seed=k)
    _, gate, _ = moe(x)
    assert ((gate > 0).sum(1) == k).all()
    assert torch.allclose(gate.sum(1), torch.ones(32), atol=1e-6)
    # the kept experts are the k with the largest gate logits, in the softmax's proportions
    gl = moe.gate(x)
    top = gl.topk(k, dim=1).indices
    assert torch.equal(gate.gather(1, top) > 0, torch.ones_like(top, dtype=torch.bool))
    probs = torch.softmax(gl, dim=1).gather(1, top)
    assert torch.allclose(gate.gather(1, top), probs / probs.sum(1, keepdim=True), atol=1e-6)


def test_logits_are_gate_weighted_expert_outputs():
    torch.manual_seed(2)
    moe = MoEClassifier(10, 3, n_experts=3, hidden=8, top_k=2, dropout=0.0).eval()
    x = _x(b=5)
    logits, gate, _ = moe(x)
    manual = sum(gate[:, k:k + 1] * moe.experts[k](x) for k in range(3))
    assert torch.allclose(logits, manual, atol=1e-6)


def test_load_balancing_term_uniform_vs_collapsed():
    torch.manual_seed(3)
    moe = MoEClassifier(10, 3, n_experts=4, hidden=8, dropout=0.0)
    with torch.no_grad():
        moe.gate.weight.zero_()
        moe.gate.bias.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]))  # everything to expert 0
    _, _, lb_collapsed = moe(_x())
    assert lb_collapsed.item() == pytest.approx(4.0, rel=1e-3)
    # perfectly balanced routing: row i goes to expert i with the same confidence -> exactly 1
    with torch.no_grad():
        moe.gate.bias.zero_()
        moe.gate.weight.zero_()
        moe.gate.weight[:, :4] = 5.0 * torch.eye(4)
    x = torch.zeros(4, 10)
    x[:, :4] = torch.eye(4)
    _, gate, lb = moe(x)
    assert torch.equal(gate.argmax(1), torch.arange(4))
    assert lb.item() == pytest.approx(1.0, abs=1e-6)
    # gradient reaches the gate through P
    moe.gate.weight.grad = None
    moe(_x())[2].backward()
    assert moe.gate.weight.grad.abs().sum() > 0


def test_invalid_top_k_rejected():
    with pytest.raises(ValueError, match="top_k"):
        MoEClassifier(4, 2, n_experts=3, hidden=4, top_k=4)


def test_mlp_head_signature():
    logits, gate, lb = MLPClassifier(10, 3, hidden=8)(_x(b=6))
    assert logits.shape == (6, 3) and torch.equal(gate, torch.ones(6, 1)) and lb.item() == 0.0
