"""Tiny, fast settings for the tuning tests (real HILBERT training on synthetic features).

pytest puts this folder on ``sys.path`` when it imports the test modules next to it (rootdir-less
test folders), so ``from tuning_tiny import ...`` needs no conftest.py.
"""

from __future__ import annotations

import torch
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set

torch.set_num_threads(1)  # the test machine's cores are shared; tiny tensors need no threads

# wide_path off: the wide path's logistic regression is chosen by a 3 x 5-fold inner CV over
# 3 modality subsets and 5 C per fit (225 small fits), which would be most of a tiny trial's time;
# the tuning machinery is what these tests check (the wide path: tests/experiment/test_trainer.py)
TINY_MODEL = {"n_heads": 2, "n_cross_layers": 1, "pool_hops": 2, "expert_hidden": 16,
              "wide_path": False}
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


def tiny_bundle(split: bool = False, seed: int = 0):
    """``(segment_features, documents)``: 3 classes of 8/7/6 documents, 3-5 segments each."""
    return synthetic_features([8, 7, 6], n_segments=(3, 5), audio_dim=8, text_dim=6, signal=1.5,
                              seed=seed, split_test_fraction=0.25 if split else None)


def tiny_train_set(split: bool = False, seed: int = 0):
    """``(DocumentSet, label report)`` of the training documents of :func:`tiny_bundle` (what
    the training pipeline's ``training_documents`` / ``training_labels`` hold)."""
    sf, documents = tiny_bundle(split=split, seed=seed)
    return build_document_set(sf, documents, only_split="train")


def tiny_train_docs(split: bool = False, seed: int = 0):
    """The training documents of :func:`tiny_bundle` as a DocumentSet."""
    return tiny_train_set(split=split, seed=seed)[0]
