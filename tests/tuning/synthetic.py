"""Small feature bundles with a real, learnable class signal for fast tuning tests.

The segment features follow the ``segment_features`` contract exactly (index, audio, text, masks,
meta); each class shifts the mean of a few feature dimensions, so a HILBERT model can learn the
labels within a few epochs and macro-F1 differs between hyper-parameter settings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TINY_MODEL = {"n_heads": 2, "n_cross_layers": 1, "pool_hops": 2, "expert_hidden": 16}
TINY_TRAINING = {"epochs": 4, "batch_size": 6, "patience": 2, "val_fraction": 0.25,
                 "device": "cpu", "progress": False}
TINY_SPACE = {
    "lambda_dual": {"low": 0.01, "high": 1.0},
    "lambda_cka": {"low": 0.01, "high": 1.0},
    "lambda_mi": {"low": 0.01, "high": 1.0},
    "n_experts": {"low": 1, "high": 4},
    "top_k": [None, 1, 2],
    "lr": {"low": 1e-3, "high": 1e-2},
    "dropout": {"low": 0.0, "high": 0.3},
    "d": [8, 16],
}


def synthetic_bundle(n_docs: int = 24, n_classes: int = 3, d_audio: int = 8, d_text: int = 6,
                     seed: int = 0, split: bool = False):
    """``(segment_features, documents)`` for ``n_docs`` documents of 3-6 segments each."""
    rng = np.random.default_rng(seed)
    labels = [f"class{(i % n_classes)}" for i in range(n_docs)]
    rows, audio, text = [], [], []
    for i, lab in enumerate(labels):
        k = int(lab[-1])
        for s in range(int(rng.integers(3, 7))):
            rows.append((f"doc{i:03d}", s))
            a = rng.normal(size=d_audio).astype(np.float32)
            t = rng.normal(size=d_text).astype(np.float32)
            a[k] += 2.0
            t[k] += 2.0
            audio.append(a)
            text.append(t)
    index = pd.DataFrame(rows, columns=["doc_id", "seg_idx"])
    sf = {
        "index": index,
        "audio": np.stack(audio), "text": np.stack(text),
        "audio_mask": np.ones(len(index), bool), "text_mask": np.ones(len(index), bool),
        "meta": {"audio_encoder": {"name": "synthetic", "dim": d_audio},
                 "text_encoder": {"name": "synthetic", "dim": d_text}},
    }
    docs = pd.DataFrame({"doc_id": [f"doc{i:03d}" for i in range(n_docs)], "label": labels})
    if split:
        docs["split"] = ["test" if i % 4 == 3 else "train" for i in range(n_docs)]
    return sf, docs
