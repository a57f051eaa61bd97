"""Building blocks of HILBERT (docs/model.md): projection, cross-modal attention, pooling.

All blocks take boolean masks with True = real segment. They are written so that a document's
result never depends on its padding or on the other documents of the batch: attention and
pooling exclude padded positions exactly (probability 0), and every other op is per position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_positions(n: int, d: int, device: torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal encoding (Vaswani et al. 2017) of segment indices 0..n-1, shape (n, d).

    Fixed rather than learned so that it extends to documents longer than any seen in training;
    odd ``d`` is handled by computing d+1 channels and dropping the last.
    """
    d_even = d + (d % 2)
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_even, 2, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / d_even))
    pe = torch.zeros(n, d_even, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe[:, :d].to(dtype)


def copy_standardisation(mean_buf: torch.Tensor, std_buf: torch.Tensor, mean, std,
                         what: str) -> None:
    """Copy per-column ``mean``/``std`` into the buffers (shapes must match); a column with
    (near) zero spread gets std 1, so it is centred but not scaled."""
    mean = torch.as_tensor(mean, dtype=mean_buf.dtype)
    std = torch.as_tensor(std, dtype=std_buf.dtype)
    if mean.shape != mean_buf.shape or std.shape != std_buf.shape:
        raise ValueError(f"{what} need shape {tuple(mean_buf.shape)}, got {tuple(mean.shape)} "
                         f"and {tuple(std.shape)}")
    mean_buf.copy_(mean)
    std_buf.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))


class ModalityProjection(nn.Module):
    """Input normalisation -> Linear(d_m, d) -> GELU -> Dropout, plus an optional segment
    position encoding.

    ``input_norm="standardize"`` (default): each feature column is standardised with the mean
    and std of the training segments (buffers set by :meth:`set_stats`; model state, saved in
    the checkpoint), as a logistic regression's scaler does. Frozen encoders put most of a
    segment's vector in a direction shared by every segment (one voice, one language); per
    column, what differs between segments becomes what the projection sees first.
    ``"layernorm"``: a per-segment LayerNorm (scale only across one segment's features).
    Either way encoders with very different output scales (L2-normalised text embeddings vs.
    raw eGeMAPS functionals) meet the projection on a common footing.
    """

    def __init__(self, in_dim: int, d: int, dropout: float, position_encoding: bool,
                 position_scale: float = 1.0, input_norm: str = "layernorm") -> None:
        super().__init__()
        if input_norm not in ("standardize", "layernorm"):
            raise ValueError(f"input_norm must be 'standardize' or 'layernorm', got {input_norm!r}")
        self.input_norm = input_norm
        self.norm = nn.LayerNorm(in_dim) if input_norm == "layernorm" else nn.Identity()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.linear = nn.Linear(in_dim, d)
        self.drop = nn.Dropout(dropout)
        self.position_encoding = position_encoding
        self.position_scale = float(position_scale)

    def set_stats(self, mean, std) -> None:
        """Per-column mean and std of the training segments (``input_norm="standardize"``); a
        column with (near) zero spread is left unscaled."""
        copy_standardisation(self.mean, self.std, mean, std, "segment stats")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The projection's input normalisation alone (standardisation or LayerNorm)."""
        if self.input_norm == "standardize":
            x = (x - self.mean) / self.std
        return self.norm(x)

    @torch.no_grad()
    def init_principal(self, segments: torch.Tensor, fraction: float = 1.0) -> int:
        """Start the first ``fraction`` of the linear map's rows at the principal directions of
        ``segments`` (the training documents' real segments of this modality, ``(n, d_m)``,
        after this projection's own normalisation): row k becomes the k-th principal axis
        divided by the square root of its variance, so each of those outputs is a whitened
        principal component (variance 1 over the segments, uncorrelated with the others) and
        its bias centres it. The other rows, and rows beyond the segments' rank, keep their
        random initialisation. Uses no labels. Each axis's sign is fixed (its largest entry
        positive), so the result does not depend on the eigen-solver. Returns the number of
        rows set."""
        z = self.normalise(segments.to(self.linear.weight.device, self.mean.dtype)
                           ).to(torch.float64)
        if z.shape[0] < 3 or fraction <= 0:
            return 0
        mu = z.mean(0)
        cov = (z - mu).T @ (z - mu) / (z.shape[0] - 1)
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0), evecs.flip(1)          # largest first
        keep = evals > 1e-6 * evals[0].clamp_min(1e-300)
        k = min(int(self.linear.out_features * fraction), int(keep.sum()))
        if k == 0:
            return 0
        axes = evecs[:, :k].T                                  # (k, d_m)
        idx = axes.abs().argmax(dim=1, keepdim=True)
        axes = axes * torch.sign(axes.gather(1, idx))
        w = axes / evals[:k, None].sqrt()
        dtype = self.linear.weight.dtype
        self.linear.weight[:k] = w.to(dtype)
        self.linear.bias[:k] = (-(w @ mu)).to(dtype)
        return k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.gelu(self.linear(self.normalise(x))))
        if self.position_encoding and self.position_scale > 0:
            pe = sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
            h = h + self.position_scale * pe
        return h


class CrossAttentionBlock(nn.Module):
    """Post-LN transformer block whose attention reads the *other* modality.

    ``y = LN(x + Dropout(MHA(Q=x, K=V=ctx, key_padding=ctx_mask)))``,
    ``out = LN(y + Dropout(FFN(y)))`` with FFN = Linear(d, 4d) -> GELU -> Dropout -> Linear(4d, d).
    Attention uses :func:`torch.nn.functional.scaled_dot_product_attention` (memory-efficient /
    flash kernels where available) with a boolean key mask, so padded keys get weight exactly 0.

    A document whose context has **no** real segment (e.g. no transcript text at all) receives a
    zero attention message (the block reduces to residual + FFN) instead of the NaN an all-masked
    softmax would give; internally its mask is opened so the kernel stays finite, and the
    message is then multiplied by 0.

    ``dropout`` applies to the message and inside the FFN; ``attention_dropout`` (default 0) to
    the attention probabilities: a non-zero value makes PyTorch's CPU path use the O(N²)-memory
    math kernel instead of the flash kernel.
    """

    def __init__(self, d: int, n_heads: int, dropout: float, ffn_mult: int = 4,
                 attention_dropout: float = 0.0) -> None:
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d={d} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d, d)
        self.kv_proj = nn.Linear(d, 2 * d)
        self.out_proj = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_mult * d, d))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = attention_dropout

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        m = ctx.shape[1]
        h = self.n_heads
        has_ctx = ctx_mask.any(dim=1)
        safe_mask = ctx_mask | ~has_ctx[:, None]
        q = self.q_proj(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv_proj(ctx).view(b, m, 2, h, d // h).unbind(dim=2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=safe_mask[:, None, None, :],
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        msg = self.out_proj(att.transpose(1, 2).reshape(b, n, d))
        msg = msg * has_ctx[:, None, None].to(msg.dtype)
        y = self.norm1(x + self.drop(msg))
        return self.norm2(y + self.drop(self.ffn(y)))


class AttentivePooling(nn.Module):
    """Structured self-attentive pooling (Lin et al. 2017) with ``r`` hops and a padding mask.

    ``A = softmax_N(W_s2 tanh(W_s1 H^T))`` (r x N, padded positions get probability 0),
    ``M = A H`` (r x d); the hops are combined into one d-vector by a learned linear map of the
    flattened r*d vector (``combine="linear"``, default: hops stay distinguishable, so the
    model can give them different roles) or by their mean (``combine="mean"``).
    ``init="uniform"`` zeroes ``W_s2``, so at initialisation every hop is the mean over the real
    segments and attention departs from it only as far as the data asks.

    Returns ``(z, attention, has_any)``; for a row whose mask is all False the attention is all
    zeros and ``z`` is meaningless (finite): the caller substitutes its "missing" embedding.
    """

    def __init__(self, d: int, hops: int, hidden: int, combine: str = "linear",
                 init: str = "random") -> None:
        super().__init__()
        if combine not in ("linear", "mean"):
            raise ValueError(f"combine must be 'linear' or 'mean', got {combine!r}")
        if init not in ("uniform", "random"):
            raise ValueError(f"init must be 'uniform' or 'random', got {init!r}")
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, hops, bias=False)
        if init == "uniform":  # every hop starts as the plain mean over the real segments
            nn.init.zeros_(self.w2.weight)
        self.combine = combine
        self.out = nn.Linear(hops * d, d) if combine == "linear" else None

    def forward(self, h: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        has_any = mask.any(dim=1)
        safe_mask = mask | ~has_any[:, None]
        scores = self.w2(torch.tanh(self.w1(h))).transpose(1, 2)  # (B, r, N)
        scores = scores.masked_fill(~safe_mask[:, None, :], float("-inf"))
        att = torch.softmax(scores, dim=-1)
        hops = att @ h  # (B, r, d)
        z = self.out(hops.flatten(1)) if self.out is not None else hops.mean(dim=1)
        att = att * has_any[:, None, None].to(att.dtype)
        return z, att, has_any


class SegmentFusion(nn.Module):
    """Same-segment fusion: segment i's projected audio and text become one paired token.

    ``p_i = Dropout(GELU(W [ã_i ; t̃_i]))``, where a modality missing at segment i contributes
    zeros. Cross-attention lets every audio segment read every text segment, so nothing there
    says which words were spoken in which voice; the paired token does (the two streams are
    aligned by construction: segment i's audio and text describe the same moment). Returns
    ``(tokens (B, N, d), mask (B, N))``, the mask True where either modality is real.
    """

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, h_audio: torch.Tensor, h_text: torch.Tensor, audio_mask: torch.Tensor,
                text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([h_audio * audio_mask[..., None].to(h_audio.dtype),
                       h_text * text_mask[..., None].to(h_text.dtype)], dim=-1)
        return self.drop(F.gelu(self.linear(x))), audio_mask | text_mask


class SegmentEvidenceHead(nn.Module):
    """Multiple-instance head: class scores per segment, pooled by a masked log-mean-exp.

    ``logits_c = log( (1/n) Σ_i exp(s_ic) )`` over the document's n real segments: a soft
    maximum, so a label carried by a few segments of a long document is not averaged away (a
    plain mean would dilute 4 marked segments among 150 by 1/37), while segments that all say
    the same thing pool to their common score. Returns ``(logits (B, C), scores (B, N, C))``;
    padded positions get score ``-inf`` (never chosen).
    """

    def __init__(self, d: int, n_classes: int) -> None:
        super().__init__()
        self.score = nn.Linear(d, n_classes)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.score(tokens)
        s = s.masked_fill(~mask[..., None], float("-inf"))
        n = mask.sum(dim=1, keepdim=True).clamp_min(1).to(s.dtype)
        logits = torch.logsumexp(s, dim=1) - torch.log(n)
        return logits, s
