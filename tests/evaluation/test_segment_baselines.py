"""The segment-level baselines (bilinear_logreg, segment_mil) and the ablations: on a corpus
whose label lives in how a segment's audio pairs with its text, pooled features are blind and the
segment models are not; every ablation row differs from hilbert."""

from __future__ import annotations

import numpy as np
import pytest

from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.evaluation.methods import METHODS, run_method
from hilbert_pipeline.evaluation.segment_baselines import BilinearProjection
from hilbert_pipeline.metrics import macro_f1


def pairing_docs(n_docs: int, seed: int, n_seg: int = 8, dim: int = 4) -> DocumentSet:
    """Two classes with the same count of "marked" audio segments (audio feature 0 = +2) and of
    "marked" text segments (text feature 0 = +2): class 1 marks the *same* segments in both
    modalities, class 0 different ones. Pooled means are identical in distribution."""
    rng = np.random.default_rng(seed)
    audio, text, labels = [], [], []
    for i in range(n_docs):
        y = i % 2
        a = rng.normal(scale=0.3, size=(n_seg, dim)).astype(np.float32)
        t = rng.normal(scale=0.3, size=(n_seg, dim)).astype(np.float32)
        slots = rng.permutation(n_seg)
        a[slots[:2], 0] += 2.0
        t[slots[:2] if y == 1 else slots[2:4], 0] += 2.0
        audio.append(a)
        text.append(t)
        labels.append(y)
    masks = [np.ones(n_seg, dtype=bool) for _ in range(n_docs)]
    return DocumentSet(doc_ids=[f"d{i:03d}" for i in range(n_docs)],
                       labels=np.array(labels, dtype=np.int64), label_names=["crossed", "paired"],
                       audio=audio, text=text, audio_mask=masks,
                       text_mask=[m.copy() for m in masks])


@pytest.fixture(scope="module")
def pairing_split():
    return pairing_docs(48, seed=0), pairing_docs(40, seed=1)


def test_bilinear_features_are_pooled_means_and_the_mean_outer_product(pairing_split):
    train, test = pairing_split
    proj = BilinearProjection.fit(train, rank=3, seed=0)
    x = proj.features(test)
    assert x.shape == (len(test), 4 + 4 + 9)
    np.testing.assert_allclose(x[:, :8], test.pooled_features(("audio", "text")))
    i = 5
    pa = ((test.audio[i] - proj.mean["audio"]) / proj.std["audio"]) @ proj.basis["audio"].T
    pt = ((test.text[i] - proj.mean["text"]) / proj.std["text"]) @ proj.basis["text"].T
    np.testing.assert_allclose(x[i, 8:], (pa.T @ pt).ravel() / len(pa))
    # the basis comes from the training segments only
    again = BilinearProjection.fit(train, rank=3, seed=0)
    np.testing.assert_allclose(again.basis["audio"], proj.basis["audio"])
    other = BilinearProjection.fit(test, rank=3, seed=0)
    assert not np.allclose(other.mean["audio"], proj.mean["audio"])


def test_segment_models_see_the_pairing_that_pooled_features_miss(pairing_split):
    train, test = pairing_split
    scores = {m: macro_f1(test.labels, run_method(METHODS[m], train, test, {}, {}, seed=0).proba)
              for m in ("concat_logreg", "bilinear_logreg", "segment_mil")}
    assert scores["concat_logreg"] < 0.7  # blind by construction (chance 0.5)
    assert scores["bilinear_logreg"] > 0.9
    assert scores["segment_mil"] > 0.9


TINY = {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2}
TINY_OPTIM = {"epochs": 6, "batch_size": 4, "num_threads": 1}


def test_every_ablation_row_differs_from_hilbert(pairing_split):
    """Same fold, same seed: each ablation changes one part of the network, so its
    predictions differ from hilbert's (an ablation that silently equals hilbert measures
    nothing)."""
    train, test = pairing_split
    ref = run_method(METHODS["hilbert"], train, test, TINY, TINY_OPTIM, seed=0)
    assert ref.info["form"] == "mixture"
    for name in ("no_dual", "no_cka", "no_mi", "mlp_head", "no_fusion",
                 "no_segment_head", "random_init", "no_distill", "direct"):
        res = run_method(METHODS[name], train, test, TINY, TINY_OPTIM, seed=0)
        assert not np.allclose(res.proba, ref.proba, atol=1e-6), name
    # the linear member's two ablations differ from hilbert unless its inner CV chose their
    # weight (0: the network alone, no_wide; 1/2: the plain average, with_wide)
    w = ref.info["members"]["linear"]
    for name, same in (("no_wide", 0.0), ("with_wide", 0.5)):
        res = run_method(METHODS[name], train, test, TINY, TINY_OPTIM, seed=0)
        assert np.allclose(res.proba, ref.proba, atol=1e-6) == (w == same), (name, w)
