"""The logistic-regression baselines: inner-CV choice of C, modalities, shared class weights."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set
from hilbert_pipeline.evaluation.methods import C_GRID, METHODS, _logreg, run_method
from hilbert_pipeline.model import class_weights


@pytest.fixture
def split():
    sf, table = synthetic_features([14, 9, 6], n_segments=(2, 4), audio_dim=5, text_dim=7,
                                   seed=2, signal=0.8)
    docs, _ = build_document_set(sf, table)
    idx = np.random.default_rng(0).permutation(len(docs))
    return docs.subset(idx[:22]), docs.subset(idx[22:])


def test_c_is_chosen_from_the_grid_by_inner_cv(split):
    train, test = split
    res = run_method(METHODS["concat_logreg"], train, test, {}, {}, seed=0)
    assert res.info["C"] in C_GRID
    assert res.proba.shape == (len(test), 3)
    np.testing.assert_allclose(res.proba.sum(1), 1.0)
    # the choice is the grid point with the best inner-CV macro-F1: a one-point grid is that point
    _, info = _logreg(train, test, 0, C_grid=(0.01,))
    assert info["C"] == 0.01
    # a fixed C skips the search
    _, info = _logreg(train, test, 0, C=3.0)
    assert info["C"] == 3.0


def test_unimodal_logreg_reads_only_its_modality(split):
    train, test = split
    text = run_method(METHODS["text_logreg"], train, test, {}, {}, seed=0).proba
    scrambled = test.subset(range(len(test)))
    rng = np.random.default_rng(1)
    scrambled.audio = [rng.normal(size=a.shape).astype(np.float32) for a in scrambled.audio]
    np.testing.assert_array_equal(
        text, run_method(METHODS["text_logreg"], train, scrambled, {}, {}, seed=0).proba)
    audio = run_method(METHODS["audio_logreg"], train, scrambled, {}, {}, seed=0).proba
    assert not np.allclose(audio, run_method(METHODS["audio_logreg"], train, test, {}, {},
                                             seed=0).proba)


def test_logreg_uses_the_neural_class_weights(split, monkeypatch):
    train, test = split
    seen = {}
    from hilbert_pipeline.training import logreg as lm

    real = lm.LogisticRegression

    class Spy(real):
        def fit(self, x, y, sample_weight=None):
            seen["cw"] = self.class_weight
            return super().fit(x, y, sample_weight)

    monkeypatch.setattr(lm, "LogisticRegression", Spy)
    power = 0.7
    run_method(METHODS["concat_logreg"], train, test, {"class_weight_power": power}, {}, seed=0,
               overrides={"C": 1.0})
    expect = class_weights(train.class_counts(), power).numpy()
    assert seen["cw"] == pytest.approx({k: float(w) for k, w in enumerate(expect)})


def test_the_wide_form_reports_no_gates_or_mi_of_an_untrained_network(split):
    """``wide_combine: wide`` trains no network: its row has no gate usage and no MI estimates
    (they would describe random weights); the default form reports both."""
    train, test = split
    model = {"d": 8, "n_heads": 2, "pool_hops": 1, "n_experts": 2}
    optim = {"epochs": 2, "batch_size": 4, "num_threads": 1}
    wide = run_method(METHODS["hilbert"], train, test, model, optim, seed=0,
                      overrides={"wide_path": True, "wide_combine": "wide"})
    assert wide.gate is None and wide.mi == {} and wide.info["form"] == "wide"
    deep = run_method(METHODS["hilbert"], train, test, model, optim, seed=0)
    assert deep.gate is not None and set(deep.mi) == {"mi_audio", "mi_text"}
