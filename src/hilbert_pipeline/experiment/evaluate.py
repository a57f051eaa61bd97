"""Run every method on the identical folds and turn the predictions into reports.

Seeds: the fold ``(repeat r, fold f)`` uses seed ``seed + 1000 * r + f`` for *every* method, so
methods also share the inner validation split and the initial random state of a fold; only the
method itself differs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data import DocumentSet
from .folds import iter_folds
from .methods import METHODS, MethodError, resolve_methods, run_method
from .metrics import METRICS, aggregate, confusion, fold_metrics, per_class_metrics, row_normalise
from .trainer import torch_threads

log = logging.getLogger(__name__)

METRIC_TITLES = {"macro_f1": "macro-F1", "balanced_accuracy": "balanced acc.",
                 "auc_ovr_macro": "macro AUC (OvR)", "weighted_f1": "weighted F1"}


@dataclass
class EvaluationRun:
    predictions: pd.DataFrame  # method, repeat, fold, doc_id, y_true, y_pred, p_<class>...
    fold_metrics: pd.DataFrame  # method, repeat, fold, n_train, n_test, metrics, seconds
    gate_usage: pd.DataFrame  # method, repeat, fold, expert, mean_weight, top1_share
    mi: pd.DataFrame  # method, repeat, fold, mi_audio, mi_text (test documents)
    label_names: list[str]


def fold_seed(seed: int, repeat: int, fold: int) -> int:
    return int(seed) + 1000 * int(repeat) + int(fold)


def _task(spec, train: DocumentSet, test: DocumentSet, model_params, training_params, seed,
          overrides):
    """One (method, fold) fit in a joblib worker (module level so that it can be pickled)."""
    with torch_threads(training_params.get("num_threads")):
        return run_method(spec, train, test, model_params, training_params, seed, overrides)


def run_evaluation(docs: DocumentSet, folds: pd.DataFrame, methods: Sequence[str],
                   model_params: Mapping[str, Any], training_params: Mapping[str, Any],
                   seed: int, method_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   progress: bool = False, n_jobs: int = 1, client=None) -> EvaluationRun:
    """Fit and score every method on every fold of ``folds``.

    ``n_jobs > 1`` runs the (method, fold) fits in that many worker processes (joblib/loky);
    ``client`` (a ``distributed.Client``) runs them on its Dask cluster instead, through joblib's
    Dask backend (``n_jobs`` is then ignored).
    Each fit is seeded on its own, so results do not depend on ``n_jobs`` as long as the torch
    thread count is the same (set ``num_threads`` in the training parameters: workers and the
    main process then use the same count).
    """
    specs = resolve_methods(list(methods))
    overrides = dict(method_overrides or {})
    stray = sorted(set(overrides) - set(METHODS))
    if stray:
        raise MethodError(f"method_overrides for unknown methods {stray}")
    fold_list = list(iter_folds(folds, docs))
    tasks = [(spec, f) for f in fold_list for spec in specs]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="evaluation", unit="fit")
    pred_rows, metric_rows, gate_rows, mi_rows = [], [], [], []
    names = docs.label_names
    calls = [(spec, docs.subset(tr), docs.subset(te), dict(model_params),
              dict(training_params), fold_seed(seed, r, f), overrides.get(spec.name))
             for spec, (r, f, tr, te) in tasks]
    stack = contextlib.ExitStack()
    if n_jobs == 1 and client is None:
        results = (run_method(*c) for c in calls)
    else:
        from joblib import Parallel, delayed, parallel_config

        if client is not None:
            stack.enter_context(parallel_config(backend="dask", n_jobs=-1))
        results = Parallel(n_jobs=-1 if client is not None else n_jobs,
                           return_as="generator")(delayed(_task)(*c) for c in calls)
    # one thread count for the whole in-process loop (fit, predict and MI terms alike)
    stack.enter_context(torch_threads(training_params.get("num_threads")))
    if bar is not None:
        stack.callback(bar.close)
    with stack:
        for (spec, (r, f, _, _)), (_, train, test, *_rest), res in zip(tasks, calls, results,
                                                                        strict=True):
            m = fold_metrics(test.labels, res.proba)
            metric_rows.append({"method": spec.name, "repeat": r, "fold": f,
                                "n_train": len(train), "n_test": len(test), **m,
                                "best_epoch": res.best_epoch,
                                "refit_epochs": res.info.get("refit_epochs"),
                                "logreg_C": res.info.get("C"), "seconds": res.seconds})
            pred = pd.DataFrame({"method": spec.name, "repeat": r, "fold": f,
                                 "doc_id": test.doc_ids,
                                 "y_true": [names[k] for k in test.labels],
                                 "y_pred": [names[k] for k in res.proba.argmax(axis=1)]})
            for k, c in enumerate(names):
                pred[f"p_{c}"] = res.proba[:, k]
            pred_rows.append(pred)
            if res.gate is not None:
                top1 = np.bincount(res.gate.argmax(axis=1), minlength=res.gate.shape[1])
                for e in range(res.gate.shape[1]):
                    gate_rows.append({"method": spec.name, "repeat": r, "fold": f, "expert": e,
                                      "mean_weight": float(res.gate[:, e].mean()),
                                      "top1_share": float(top1[e] / len(test))})
            if res.mi:
                mi_rows.append({"method": spec.name, "repeat": r, "fold": f,
                                "mi_audio": res.mi.get("mi_audio"),
                                "mi_text": res.mi.get("mi_text")})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(method=spec.name, fold=f"{r}.{f}", macro_f1=f"{m['macro_f1']:.3f}")
            log.debug("%s repeat %d fold %d: macro-F1 %.3f (%.1fs)", spec.name, r, f,
                      m["macro_f1"], res.seconds)
    return EvaluationRun(
        predictions=pd.concat(pred_rows, ignore_index=True),
        fold_metrics=pd.DataFrame(metric_rows),
        gate_usage=pd.DataFrame(gate_rows, columns=["method", "repeat", "fold", "expert",
                                                    "mean_weight", "top1_share"]),
        mi=pd.DataFrame(mi_rows, columns=["method", "repeat", "fold", "mi_audio", "mi_text"]),
        label_names=list(names),
    )


# ---------------------------------------------------------------------------- summaries
def summarize(fold_table: pd.DataFrame, ci: str = "t") -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {metric: {"mean", "std", "ci95": [lo, hi]}}}`` in the table's method order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method in pd.unique(fold_table["method"]):
        part = fold_table[fold_table["method"] == method]
        ratio = float((part["n_test"] / part["n_train"]).mean())
        out[str(method)] = {}
        for metric in METRICS:
            agg = aggregate([None if v is None or (isinstance(v, float) and math.isnan(v))
                             else float(v) for v in part[metric]], ci=ci, test_train_ratio=ratio,
                            bounds=(0.0, 1.0))  # every reported metric is a rate in [0, 1]
            out[str(method)][metric] = {"mean": agg["mean"], "std": agg["std"],
                                        "ci95": agg["ci95"]}
    return out


def per_class_table(predictions: pd.DataFrame, label_names: Sequence[str]) -> pd.DataFrame:
    """Per method and class: precision/recall/F1 mean and std over folds, total support."""
    code = {c: k for k, c in enumerate(label_names)}
    rows = []
    for (method, r, f), part in predictions.groupby(["method", "repeat", "fold"], sort=False):
        y = part["y_true"].map(code).to_numpy()
        proba = part[[f"p_{c}" for c in label_names]].to_numpy()
        pc = per_class_metrics(y, proba, label_names)
        pc.insert(0, "method", method)
        pc.insert(1, "repeat", r)
        pc.insert(2, "fold", f)
        rows.append(pc)
    t = pd.concat(rows, ignore_index=True)
    g = t.groupby(["method", "class"], sort=False)
    out = g[["precision", "recall", "f1"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["support"] = g["support"].sum()
    return out.reset_index()


def confusion_matrices(predictions: pd.DataFrame, method: str, label_names: Sequence[str]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(counts, row-normalised) over all folds and repeats of ``method``."""
    code = {c: k for k, c in enumerate(label_names)}
    part = predictions[predictions["method"] == method]
    if part.empty:
        raise MethodError(f"no predictions for method {method}")
    cm = confusion(part["y_true"].map(code).to_numpy(), part["y_pred"].map(code).to_numpy(),
                   len(label_names))
    return cm, row_normalise(cm)


def best_baseline(summary: Mapping[str, Any], metric: str = "macro_f1") -> str | None:
    """The non-HILBERT, non-ablation method with the highest mean ``metric`` (None if none)."""
    cands = [(v[metric]["mean"], m) for m, v in summary.items()
             if m in METHODS and METHODS[m].role in ("baseline", "trivial")
             and v[metric]["mean"] is not None]
    return max(cands)[1] if cands else None


def gate_summary(gate_usage: pd.DataFrame) -> pd.DataFrame:
    """Mean gate weight and top-1 share per method and expert over folds."""
    if gate_usage.empty:
        return gate_usage[["method", "expert", "mean_weight", "top1_share"]]
    return (gate_usage.groupby(["method", "expert"], sort=False)[["mean_weight", "top1_share"]]
            .mean().reset_index())


def mi_summary(mi: pd.DataFrame, ci: str = "t") -> dict[str, dict[str, Any]]:
    """``{method: {"mi_audio": {mean,std,ci95}, "mi_text": {...}}}`` over folds."""
    out = {}
    for method, part in mi.groupby("method", sort=False):
        out[str(method)] = {}
        for k in ("mi_audio", "mi_text"):
            agg = aggregate([None if pd.isna(v) else float(v) for v in part[k]],
                            ci="t" if ci == "corrected_t" else ci)
            out[str(method)][k] = {"mean": agg["mean"], "std": agg["std"], "ci95": agg["ci95"]}
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def comparison_markdown(summary: Mapping[str, Any], folds_info: str,
                        class_counts: Mapping[str, int]) -> str:
    """Markdown table: one row per method, ``mean ± std [CI]`` per metric, best mean in bold."""
    best = {m: max((v[m]["mean"] for v in summary.values() if v[m]["mean"] is not None),
                   default=None) for m in METRICS}
    head = "| method | role | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " |"
    lines = ["# Method comparison", "", folds_info,
             "Classes: " + ", ".join(f"{c} ({n})" for c, n in class_counts.items()) + ".", "",
             "Cells: mean ± std over folds, [95 % CI]; best mean per column in bold.", "",
             head, "|" + "---|" * (len(METRICS) + 2)]
    for method, vals in summary.items():
        cells = []
        for m in METRICS:
            v = vals[m]
            txt = f"{_fmt(v['mean'])} ± {_fmt(v['std'])} [{_fmt(v['ci95'][0])}, " \
                  f"{_fmt(v['ci95'][1])}]"
            if v["mean"] is not None and best[m] is not None and v["mean"] == best[m]:
                txt = f"**{txt}**"
            cells.append(txt)
        role = METHODS[method].role if method in METHODS else "?"
        lines.append(f"| {method} | {role} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def confusion_figure(cm: np.ndarray, cm_norm: np.ndarray, label_names: Sequence[str],
                     title: str):
    """Two panels: counts and row-normalised rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(label_names)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * n, 1.5 + 0.8 * n), squeeze=True)
    for ax, mat, sub, fmt in ((axes[0], cm, "counts", "d"),
                              (axes[1], cm_norm, "row-normalised (recall)", ".2f")):
        im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=mat.max() if mat.max() > 0 else 1)
        ax.set_xticks(range(n), label_names, rotation=45, ha="right")
        ax.set_yticks(range(n), label_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub)
        thr = mat.max() / 2 if mat.max() > 0 else 0.5
        for i in range(n):
            for j in range(n):
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center",
                        color="white" if mat[i, j] > thr else "black", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame, title: str = "training curves"):
    """Loss terms per epoch (left) and validation macro-F1 (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for col in history.columns:
        if col.startswith("train_") and col not in ("train_temperature",):
            ax1.plot(history["epoch"], history[col], label=col[len("train_"):])
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss terms (unweighted), MI estimates")
    ax1.legend(fontsize=7)
    if "val_macro_f1" in history and history["val_macro_f1"].notna().any():
        ax2.plot(history["epoch"], history["val_macro_f1"], marker="o", ms=3)
        best = history[history["best"]] if "best" in history else history.iloc[:0]
        if not best.empty:
            ax2.axvline(int(best["epoch"].iloc[0]), color="gray", ls="--", label="kept epoch")
            ax2.legend(fontsize=7)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("inner-validation macro-F1")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
