"""The logistic regression that the linear member, the distillation teacher and the baselines
share (training/logreg.py)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from synthetic import synthetic_features
from threadpoolctl import threadpool_info, threadpool_limits

from hilbert_pipeline.documents import build_document_set
from hilbert_pipeline.training import trainer
from hilbert_pipeline.training.logreg import fit_logreg


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_every_fit_and_the_teachers_probabilities_run_on_one_blas_thread(monkeypatch):
    """A Dask worker has one BLAS thread and the main process one per core; the regressions
    feed the network, so they run on one thread everywhere (the same numbers in both)."""
    sf, documents = synthetic_features([8, 7, 6], n_segments=(2, 4), audio_dim=6, text_dim=5,
                                       signal=1.5, seed=1)
    docs, _ = build_document_set(sf, documents)
    seen: list[set[int]] = []
    fit, proba = LogisticRegression.fit, LogisticRegression.predict_proba

    def recording_fit(self, *a, **k):
        seen.append(_blas_threads())
        return fit(self, *a, **k)

    def recording_proba(self, *a, **k):
        seen.append(_blas_threads())
        return proba(self, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", recording_fit)
    monkeypatch.setattr(LogisticRegression, "predict_proba", recording_proba)
    with threadpool_limits(limits=2, user_api="blas"):  # as in a process with 2 cores
        outside = _blas_threads()
        fit_logreg(docs, seed=0, modalities=("audio", "text"))
        trainer._WIDE_CACHE.clear()
        p = trainer.teacher_probabilities(docs, ("audio", "text"), 1.0, seed=0)
        after = _blas_threads()
    assert seen and all(s == {1} for s in seen), seen
    assert outside == after  # the limit is lifted after each fit
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
