"""Metric code: known values through the same functions the evaluation uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hilbert_pipeline.evaluation.report import summarize
from hilbert_pipeline.metrics import aggregate, fold_metrics, row_normalise


def _onehot(y, c):
    p = np.zeros((len(y), c))
    p[np.arange(len(y)), y] = 1.0
    return p


def test_perfect_predictor_scores_one():
    y = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    m = fold_metrics(y, _onehot(y, 3))
    assert m == {"macro_f1": 1.0, "balanced_accuracy": 1.0, "auc_ovr_macro": 1.0,
                 "weighted_f1": 1.0}


def test_constant_predictor_balanced_accuracy_is_one_over_c():
    y = np.array([0] * 6 + [1] * 3 + [2] * 2 + [3] * 1)
    m = fold_metrics(y, _onehot(np.zeros_like(y), 4))
    assert m["balanced_accuracy"] == pytest.approx(1 / 4)
    assert m["auc_ovr_macro"] == pytest.approx(0.5)
    assert m["macro_f1"] < 0.25


def test_auc_skips_classes_absent_from_the_fold():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 2, 2, 2, 2])  # class 1 absent from this test fold
    proba = rng.dirichlet(np.ones(3), size=len(y))
    m = fold_metrics(y, proba)
    expect = np.mean([roc_auc_score(y == 0, proba[:, 0]), roc_auc_score(y == 2, proba[:, 2])])
    assert m["auc_ovr_macro"] == pytest.approx(expect)
    # a single-class fold has no AUC
    assert fold_metrics(np.zeros(4, int), proba[:4])["auc_ovr_macro"] is None


def test_one_class_in_truth_and_prediction_scores_without_a_warning():
    """A small labelled inference set may hold one class, predicted right: no sklearn warning
    reaches the user's terminal, and every score is the perfect one."""
    import warnings

    y = np.array([1, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = fold_metrics(y, _onehot(y, 3))
    assert m["macro_f1"] == 1.0 and m["balanced_accuracy"] == 1.0


def test_aggregate_t_interval():
    v = [0.5, 0.6, 0.7, 0.8]
    a = aggregate(v)
    assert a["mean"] == pytest.approx(0.65)
    sd = np.std(v, ddof=1)
    assert a["std"] == pytest.approx(sd)
    h = 3.182446305284263 * sd / 2  # t_{0.975, 3}
    assert a["ci95"] == pytest.approx([0.65 - h, 0.65 + h])
    c = aggregate(v, ci="corrected_t", test_train_ratio=0.25)
    assert c["ci95"][1] - c["mean"] == pytest.approx(3.182446305284263 * sd * math.sqrt(0.5))
    # the interval is clipped to the metric's range when bounds are given
    wide = aggregate([1.0, 1.0, 0.8])
    assert wide["ci95"][1] > 1.0
    clipped = aggregate([1.0, 1.0, 0.8], bounds=(0.0, 1.0))
    assert clipped["ci95"] == [wide["ci95"][0], 1.0] and clipped["mean"] == wide["mean"]
    assert aggregate([0.4])["std"] is None and aggregate([None, 0.4, float("nan")])["n"] == 1


def test_summarize_shape():
    import pandas as pd

    t = pd.DataFrame({"method": ["a", "a", "b", "b"], "repeat": 0, "fold": [0, 1, 0, 1],
                      "n_train": 8, "n_test": 2, "macro_f1": [1.0, 0.5, 0.2, 0.4],
                      "balanced_accuracy": [1, 0.5, 0.25, 0.5], "auc_ovr_macro": [1, None, 0.5, 0.5],
                      "weighted_f1": [1, 0.5, 0.3, 0.3]})
    s = summarize(t)
    assert list(s) == ["a", "b"]
    assert set(s["a"]) == {"macro_f1", "balanced_accuracy", "auc_ovr_macro", "weighted_f1"}
    for v in s["a"].values():
        assert set(v) == {"mean", "std", "ci95"} and len(v["ci95"]) == 2
    assert s["a"]["auc_ovr_macro"]["mean"] == 1.0 and s["a"]["auc_ovr_macro"]["std"] is None
    assert s["b"]["macro_f1"]["mean"] == pytest.approx(0.3)


def test_row_normalise():
    cm = np.array([[3, 1], [0, 0]])
    np.testing.assert_allclose(row_normalise(cm), [[0.75, 0.25], [0, 0]])
