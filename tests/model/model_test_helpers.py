"""Shared helpers of tests/model: tiny configs and padded random batches (CPU, one thread).

A plain module (tests/ is not a package): test files import it by name."""

from __future__ import annotations

import torch

from hilbert_pipeline.model import HilbertConfig

torch.set_num_threads(1)

A_DIM, T_DIM, N_CLS = 6, 10, 3


def tiny_config(**overrides) -> HilbertConfig:
    """A small config of the fused network alone: ModDrop and segment dropout off (they mask
    whole modalities or segments at random in training mode, which the tests of other parts
    would have to account for), no linear member (wide path), no unimodal members and no label
    smoothing (plain cross-entropy values): their own tests turn them on."""
    base = dict(audio_dim=A_DIM, text_dim=T_DIM, n_classes=N_CLS, d=16, n_heads=2, pool_hops=3,
                n_experts=3, dropout=0.1, modality_dropout=0.0, segment_dropout=0.0,
                wide_path=False, label_smoothing=0.0, unimodal_members=False)
    base.update(overrides)
    return HilbertConfig(**base)


def make_batch(b: int = 4, n: int = 7, seed: int = 0, lengths=None):
    """Random features with per-document lengths (the rest is padding, filled with noise so a
    leak of padding into the result would show)."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(b, n, A_DIM, generator=g)
    text = torch.randn(b, n, T_DIM, generator=g)
    lengths = lengths or [n - (i % 3) for i in range(b)]
    am = torch.zeros(b, n, dtype=torch.bool)
    for i, ln in enumerate(lengths):
        am[i, :ln] = True
    return audio, text, am, am.clone()
