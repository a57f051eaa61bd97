"""The class-weighted logistic regression on pooled features: the linear member of the network
(``wide_path``) and the logistic-regression baselines fit it the same way."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.folds import stratified_splitter
from hilbert_pipeline.model import class_weights


def full_proba(clf, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns for every class: a class absent from the training fold gets probability 0."""
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(clf.classes_, dtype=np.int64)] = proba
    return out


#: candidate inverse regularisation strengths of the logistic-regression baselines
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def fit_logreg(train: DocumentSet, seed: int, modalities: tuple[str, ...] = ("audio", "text"),
               class_weight_power: float = 1.0, C: float | None = None,  # noqa: N803
               C_grid: tuple[float, ...] = C_GRID, inner_folds: int = 5,  # noqa: N803
               max_iter: int = 2000, inner_repeats: int = 1,
               features: np.ndarray | None = None):
    """Standardised pooled features -> class-weighted logistic regression:
    ``(pipeline, C, inner-CV macro-F1 of that C or None when C was not searched)``.

    Class weights are the neural methods' own (``class_weights(counts, class_weight_power)``,
    power 1 = scikit-learn's ``balanced``), so no method is favoured on the minority classes.
    ``C=None`` (default) picks C from ``C_grid`` by an inner stratified (grouped when the
    documents carry groups) cross-validation on ``train``, scored by macro-F1; ties go to the
    smaller C. ``inner_repeats`` > 1 repeats the inner k-fold with other shuffles (ungrouped
    documents only), which steadies the choice on small training sets. ``features``: the
    training documents' feature rows to use instead of their pooled ``modalities``.

    The fit runs on one BLAS thread (:func:`one_blas_thread`), so that it gives the same
    numbers in a Dask worker (one BLAS thread) and in a process with one BLAS thread per core.
    """
    with one_blas_thread():
        return _fit_logreg(train, seed, modalities, class_weight_power, C, C_grid, inner_folds,
                           max_iter, inner_repeats, features)


def one_blas_thread():
    """Context: NumPy's and SciPy's BLAS (OpenBLAS) on one thread inside the block. A Dask
    worker starts with one BLAS thread and the main process with one per core, and OpenBLAS may
    add a product's terms in another order with more threads. The logistic regressions feed the
    network (its linear member and its distillation targets), so a difference in the last bit
    of their fit would become a difference in the trained weights."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _fit_logreg(train, seed, modalities, class_weight_power, C, C_grid,  # noqa: N803
                inner_folds, max_iter, inner_repeats, features):
    counts = train.class_counts()
    weights = class_weights(counts, class_weight_power).numpy()
    cw = {int(k): float(weights[k]) for k in np.flatnonzero(counts)}
    x_train = train.pooled_features(modalities) if features is None else features

    def model(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(
            C=float(c), max_iter=int(max_iter), class_weight=cw, random_state=seed))

    k = int(min(inner_folds, counts[counts > 0].min()))
    if C is not None or k < 2 or len(C_grid) == 1:
        chosen = float(C if C is not None else (C_grid[0] if len(C_grid) == 1 else 1.0))
        return model(chosen).fit(x_train, train.labels), chosen, None
    grouped = train.groups is not None and len(set(train.groups.tolist())) >= k
    groups = train.groups if grouped else None
    if groups is None and inner_repeats > 1:
        cv = RepeatedStratifiedKFold(n_splits=k, n_repeats=int(inner_repeats),
                                     random_state=int(seed) % 2**32)
    else:
        cv = stratified_splitter(k, groups, seed)
    search = GridSearchCV(model(1.0), {"logisticregression__C": [float(c) for c in C_grid]},
                          scoring="f1_macro", cv=cv, refit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(x_train, train.labels, groups=groups)
    return (search.best_estimator_, float(search.best_params_["logisticregression__C"]),
            float(search.best_score_))
