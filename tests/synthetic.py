"""Synthetic ``segment_features`` + ``documents`` with a known class signal.

Used by the unit tests (no encoders needed) and to time the evaluation protocol at demo size
(``python -m synthetic`` style benchmarks in docs/evaluation.md).
Class ``k`` shifts a class-specific random direction in each modality by ``signal``; audio and
text carry independent noise, so both modalities are informative and complementary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def synthetic_features(class_sizes: Sequence[int], n_segments: tuple[int, int] = (3, 8),
                       audio_dim: int = 16, text_dim: int = 24, signal: float = 1.0,
                       seed: int = 0, groups_per_class: int | None = None,
                       split_test_fraction: float | None = None,
                       missing_text_rate: float = 0.0) -> tuple[dict[str, Any], pd.DataFrame]:
    """Return ``(segment_features, documents)`` following docs/CONTRACTS.md.

    ``class_sizes``: documents per class (classes named ``c0``, ``c1``, …). ``n_segments``:
    inclusive range of segments per document. ``groups_per_class``: add a ``group`` column
    (groups never mix classes). ``split_test_fraction``: add a fixed ``split`` column.
    ``missing_text_rate``: share of segments whose text is missing (mask False, zeros).
    """
    rng = np.random.default_rng(seed)
    n_classes = len(class_sizes)
    dir_a = rng.normal(size=(n_classes, audio_dim)).astype(np.float32)
    dir_t = rng.normal(size=(n_classes, text_dim)).astype(np.float32)
    rows, audio, text, am, tm, docs = [], [], [], [], [], []
    k = 0
    for c, size in enumerate(class_sizes):
        for j in range(size):
            doc_id = f"doc{k:04d}"
            n = int(rng.integers(n_segments[0], n_segments[1] + 1))
            a = rng.normal(size=(n, audio_dim)).astype(np.float32) + signal * dir_a[c]
            t = rng.normal(size=(n, text_dim)).astype(np.float32) + signal * dir_t[c]
            tmask = rng.random(n) >= missing_text_rate
            tmask[0] = True
            t[~tmask] = 0.0
            audio.append(a)
            text.append(t)
            am.append(np.ones(n, dtype=bool))
            tm.append(tmask)
            rows += [(doc_id, s) for s in range(n)]
            rec = {"doc_id": doc_id, "label": f"c{c}", "n_segments": n}
            if groups_per_class:
                rec["group"] = f"g{c}_{j % groups_per_class}"
            docs.append(rec)
            k += 1
    documents = pd.DataFrame(docs)
    order = rng.permutation(len(documents))  # manifest order is not class order
    documents = documents.iloc[order].reset_index(drop=True)
    if split_test_fraction is not None:
        split = np.full(len(documents), "train", dtype=object)
        for c in documents["label"].unique():
            idx = np.flatnonzero(documents["label"].to_numpy() == c)
            n_test = max(1, round(split_test_fraction * len(idx)))
            split[idx[:n_test]] = "test"
        documents["split"] = split
    features = {
        "index": pd.DataFrame(rows, columns=["doc_id", "seg_idx"]),
        "audio": np.concatenate(audio),
        "text": np.concatenate(text),
        "audio_mask": np.concatenate(am),
        "text_mask": np.concatenate(tm),
        "meta": {"audio_encoder": {"name": "synthetic", "dim": audio_dim, "options": {},
                                   "version": "1"},
                 "text_encoder": {"name": "synthetic", "dim": text_dim, "options": {},
                                  "version": "1"}},
    }
    return features, documents
