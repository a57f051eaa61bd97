"""Classification metrics per fold and their aggregation over folds (scikit-learn based).

Choices (documented in docs/evaluation.md):

* ``macro_f1`` / ``weighted_f1``: F1 over the classes that occur in the fold's true *or*
  predicted labels (scikit-learn's default), ``zero_division=0``. A class that is neither present
  nor predicted in a fold is not counted as a zero.
* ``balanced_accuracy``: mean recall over the classes present in the fold's true labels; a constant
  predictor scores ``1 / C_present``.
* ``auc_ovr_macro``: one-vs-rest ROC AUC of each class *present* in the fold's true labels (its
  probability column against all other documents), macro-averaged over those classes. Computed class
  by class so that a class absent from a test fold is skipped instead of making scikit-learn's
  multi-class AUC fail; undefined (``None``) when the fold holds a single class.
* Aggregation: mean, sample std (ddof=1) and a 95 % Student-t interval over the folds
  (``mean ± t_{0.975, n-1} · std / √n``). Folds of repeated CV share training documents, so that
  interval is optimistic; ``ci="corrected_t"`` uses the Nadeau & Bengio (2003) corrected variance
  ``(1/n + n_test/n_train) · s²`` instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

METRICS = ("macro_f1", "balanced_accuracy", "auc_ovr_macro", "weighted_f1")


def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 of the argmax predictions of ``proba`` (the one definition used everywhere)."""
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(y_true), np.asarray(proba).argmax(axis=1),
                          average="macro", zero_division=0))


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """The four headline metrics for one fold; ``proba`` is ``(n, C)`` (argmax = prediction)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != y_true.shape[0]:
        raise ValueError(f"proba has shape {proba.shape}, expected ({y_true.shape[0]}, C)")
    y_pred = proba.argmax(axis=1)
    present = np.unique(y_true)
    aucs = []
    for c in present:
        pos = y_true == c
        if pos.all():
            continue
        aucs.append(roc_auc_score(pos.astype(int), proba[:, c]))
    with warnings.catch_warnings():  # predicted classes absent from y_true, or a single class
        # in both (a small labelled inference set): expected, see above; the score is defined
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        bacc = float(balanced_accuracy_score(y_true, y_pred))
    return {
        "macro_f1": macro_f1(y_true, proba),
        "balanced_accuracy": bacc,
        "auc_ovr_macro": float(np.mean(aucs)) if aucs else None,
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
    }


def per_class_metrics(y_true: np.ndarray, proba: np.ndarray, label_names: Sequence[str]
                      ) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class (zeros where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    y_pred = np.asarray(proba).argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(label_names))), zero_division=0)
    return pd.DataFrame({"class": list(label_names), "precision": p, "recall": r, "f1": f,
                         "support": s.astype(int)})


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts ``(C, C)``: rows = true class, columns = predicted class."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (rows of absent classes stay 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def _t_quantile(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def aggregate(values: Sequence[float | None], ci: str = "t",
              test_train_ratio: float | None = None,
              bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """``{"mean", "std", "ci95": [lo, hi], "n"}`` over the defined (non-None/NaN) values.

    ``ci="t"``: Student-t interval; ``ci="corrected_t"``: Nadeau-Bengio corrected resampled t
    (needs ``test_train_ratio`` = n_test / n_train of a fold). With fewer than two values the
    spread is undefined and reported as ``None`` (JSON null, never NaN). ``bounds`` clips the
    interval to the metric's range (e.g. ``(0, 1)`` for F1, balanced accuracy and AUC), so a
    small-sample t-interval never reports an impossible score such as 1.19.
    """
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    n = len(v)
    if n == 0:
        return {"mean": None, "std": None, "ci95": [None, None], "n": 0}
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "std": None, "ci95": [None, None], "n": 1}
    std = float(v.std(ddof=1))
    if ci == "t":
        se = std / math.sqrt(n)
    elif ci == "corrected_t":
        if test_train_ratio is None:
            raise ValueError("ci='corrected_t' needs test_train_ratio")
        se = std * math.sqrt(1.0 / n + test_train_ratio)
    else:
        raise ValueError(f"unknown ci method '{ci}' (use 't' or 'corrected_t')")
    h = _t_quantile(n - 1) * se
    lo, hi = mean - h, mean + h
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "std": std, "ci95": [lo, hi], "n": n}
