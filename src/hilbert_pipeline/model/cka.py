"""Linear-kernel centered kernel alignment (Kornblith et al. 2019), biased and unbiased."""

from __future__ import annotations

import torch


def _gram(x: torch.Tensor) -> torch.Tensor:
    """Linear-kernel Gram matrix of column-centred, Frobenius-normalised ``x``.

    Normalising by the Frobenius norm changes nothing mathematically (CKA is invariant to
    isotropic scaling) but keeps HSIC values O(1) whatever the feature scale, so the ``eps`` in
    the denominators is relative rather than absolute.
    """
    x = x - x.mean(dim=0, keepdim=True)
    x = x / (x.norm() + 1e-12)
    return x @ x.T


def _hsic_biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    # Inputs are Gram matrices of centred features, so H K H = K and HSIC ∝ <K, L>_F.
    return (k * l).sum()


def _hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    """Unbiased HSIC estimator (Song et al. 2012, eq. 5), up to the positive factor 1/(n(n-3))
    shared by numerator and denominators of CKA (it cancels, so it is omitted)."""
    n = k.shape[0]
    k = k - torch.diag(torch.diagonal(k))
    l = l - torch.diag(torch.diagonal(l))  # noqa: E741
    kl = k @ l
    return (torch.trace(kl) + k.sum() * l.sum() / ((n - 1) * (n - 2))
            - 2.0 * kl.sum() / (n - 2))


def linear_cka(x: torch.Tensor, y: torch.Tensor, unbiased: bool = False,
               eps: float = 1e-8) -> torch.Tensor:
    """Linear CKA between the rows of ``x`` (n, p) and ``y`` (n, q); p and q may differ.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K = X Xᵀ``, ``L = Y Yᵀ`` of
    column-centred features (Kornblith et al. 2019). The Gram form costs O(n² (p + q)), right for
    the batch-sized n used in training, and works for any widths. Differentiable; ``eps`` keeps
    a constant input (zero variance) finite: its CKA is 0, not NaN.

    ``unbiased=True`` uses the unbiased HSIC estimator (Song et al. 2012), which removes the
    upward bias of the plug-in estimator when n is small relative to the widths (random,
    independent features then give CKA near 0 instead of a large positive value). It needs
    n >= 4; the result is an estimate and may fall slightly outside [0, 1] (the self-HSIC
    terms are clamped at ``eps`` so the square root stays defined).
    """
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"linear_cka needs 2-D inputs, got shapes {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka needs the same number of rows, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    n = x.shape[0]
    if n < (4 if unbiased else 2):
        raise ValueError(f"linear_cka needs at least {4 if unbiased else 2} rows"
                         f"{' for the unbiased estimator' if unbiased else ''}, got {n}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    k, l = _gram(x.to(dtype)), _gram(y.to(dtype))  # noqa: E741
    hsic = _hsic_unbiased if unbiased else _hsic_biased
    kl, kk, ll = hsic(k, l), hsic(k, k), hsic(l, l)
    return kl / torch.sqrt(kk.clamp_min(eps) * ll.clamp_min(eps))
