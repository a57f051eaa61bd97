"""linear_cka: the properties that define CKA (Kornblith et al. 2019) and the unbiased variant."""

from __future__ import annotations

import pytest
import torch

from hilbert_pipeline.model import linear_cka


def _rand(n, p, seed):
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(p, seed):
    q, _ = torch.linalg.qr(_rand(p, p, seed))
    return q


def test_self_similarity_is_one():
    x = _rand(30, 8, 0)
    assert linear_cka(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, x, unbiased=True).item() == pytest.approx(1.0, abs=1e-6)


def test_invariant_to_rotation_scaling_and_width():
    x, y = _rand(40, 8, 1), _rand(40, 5, 2)
    y = y + x[:, :5] * 0.7  # related, so the value is not trivially 0
    ref = linear_cka(x, y).item()
    assert 0.2 < ref < 0.99
    x_rot = 3.7 * x @ _orthogonal(8, 3)
    y_rot = 0.01 * y @ _orthogonal(5, 4)
    assert linear_cka(x_rot, y).item() == pytest.approx(ref, abs=1e-6)
    assert linear_cka(x, y_rot).item() == pytest.approx(ref, abs=1e-6)
    # A width-changing isometry (zero-padding columns / embedding in a wider space) changes nothing.
    wide = torch.cat([x, torch.zeros(40, 20, dtype=x.dtype)], dim=1) @ _orthogonal(28, 5)
    assert linear_cka(wide, y).item() == pytest.approx(ref, abs=1e-6)
    # Translation of the features is removed by centring.
    assert linear_cka(x + 5.0, y - 2.0).item() == pytest.approx(ref, abs=1e-6)
    # Symmetric.
    assert linear_cka(y, x).item() == pytest.approx(ref, abs=1e-9)


def test_not_invariant_to_anisotropic_scaling():
    """Guards against an implementation that whitens (that would be CCA, not CKA)."""
    x, y = _rand(40, 4, 6), _rand(40, 4, 7)
    y = y + x
    stretched = x * torch.tensor([10.0, 1.0, 1.0, 1.0], dtype=x.dtype)
    assert abs(linear_cka(stretched, y).item() - linear_cka(x, y).item()) > 0.05


def test_independent_matrices_far_below_one():
    # non-zero means: an implementation that forgets to centre would report ~1 here
    x, y = _rand(2000, 5, 8) + 3.0, _rand(2000, 7, 9) - 2.0
    assert linear_cka(x, y).item() < 0.02


def test_unbiased_removes_small_batch_bias():
    # n small relative to p: the plug-in (biased) estimator is large for independent data.
    biased, unbiased = [], []
    for s in range(10):
        x, y = _rand(12, 64, 100 + s), _rand(12, 64, 200 + s)
        biased.append(linear_cka(x, y).item())
        unbiased.append(linear_cka(x, y, unbiased=True).item())
    assert min(biased) > 0.5
    assert abs(sum(unbiased) / len(unbiased)) < 0.1
    # ...while a genuinely shared signal still scores high.
    x = _rand(12, 64, 1)
    assert linear_cka(x, x @ _orthogonal(64, 2), unbiased=True).item() == pytest.approx(1, abs=1e-6)


def test_unbiased_needs_four_rows_and_shapes_checked():
    with pytest.raises(ValueError, match="at least 4 rows"):
        linear_cka(_rand(3, 2, 0), _rand(3, 2, 1), unbiased=True)
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(_rand(5, 2, 0), _rand(6, 2, 1))


def test_constant_input_is_finite_and_differentiable():
    x = torch.ones(6, 3, requires_grad=True)
    y = torch.randn(6, 4, requires_grad=True)
    v = linear_cka(x, y)
    assert torch.isfinite(v) and v.item() == pytest.approx(0.0, abs=1e-6)
    z = torch.randn(6, 3, requires_grad=True)
    linear_cka(z, y).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
