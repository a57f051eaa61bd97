"""Evaluation reports from the per-fold results: summaries with intervals, per-class and confusion
tables, the comparison table (``comparison.md``) and the short DVC metrics file."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.evaluation.methods import METHODS, MethodError
from hilbert_pipeline.metrics import METRICS, aggregate, confusion, per_class_metrics, row_normalise
from hilbert_pipeline.model import PredictionForm

METRIC_TITLES = {"macro_f1": "macro-F1", "balanced_accuracy": "balanced acc.",
                 "auc_ovr_macro": "macro AUC (OvR)", "weighted_f1": "weighted F1"}


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
    lines = ["# Method comparison", "", folds_info, "",
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


#: how each ``HilbertConfig.prediction_form`` reads in the reports
FORMS = {name: PredictionForm(name).description
         for name in ("mixture", "wide", "residual", "deep")}


def network_method(fold_metrics, reference: str = "hilbert") -> str | None:
    """The method whose rows are the network alone: ``reference`` itself when its prediction
    is the network in every fold (the default), else ``no_wide`` when evaluated, else None."""
    if "form" in fold_metrics.columns:
        forms = set(fold_metrics.loc[fold_metrics["method"] == reference, "form"].dropna())
        if forms == {"deep"}:
            return reference
    return "no_wide" if (fold_metrics["method"] == "no_wide").any() else None


def network_sentence(summary: Mapping[str, Any], network: str | None,
                     reference: str = "hilbert") -> str | None:
    """One sentence: the network alone (``network``) beside the reference and the best
    logistic regression; None when no network-alone row was evaluated."""
    if network is None or network not in summary or reference not in summary:
        return None
    f1 = {m: summary[m]["macro_f1"]["mean"] for m in summary if "macro_f1" in summary[m]}
    lrs = {m: v for m, v in f1.items() if m.endswith("_logreg")}
    if network == reference:
        text = (f"{reference} is the trained network alone (no linear member): macro-F1 "
                f"{f1[network]:.3f}")
    else:
        text = (f"The network alone (`{network}`, no linear member): macro-F1 "
                f"{f1[network]:.3f}, against {f1[reference]:.3f} for {reference}")
    if lrs:
        best = max(lrs, key=lrs.get)
        text += f"; the best logistic regression ({best}): {lrs[best]:.3f}"
    return text + "."


def form_sentence(fold_metrics, method: str = "hilbert") -> str | None:
    """One sentence: which form ``method``'s prediction took in how many folds (the model's
    ``wide_path``/``wide_combine``, docs/model.md); None when the table has no form column."""
    if "form" not in fold_metrics.columns:
        return None
    forms = fold_metrics.loc[fold_metrics["method"] == method, "form"].dropna()
    if forms.empty:
        return None
    n = len(forms)
    parts = [f"{FORMS.get(f, f)} in {k} of {n} folds" for f, k in forms.value_counts().items()]
    return (f"Form of {method}'s prediction (docs/model.md): " + "; ".join(parts) + ".")


def members_sentence(fold_metrics, method: str = "hilbert") -> str | None:
    """One sentence: the mean weights of ``method``'s members (fused network, text member,
    audio member; the linear member's share of the final mixture) over the folds and how often
    each took part; None when the method has no members."""
    rows = fold_metrics.loc[fold_metrics["method"] == method]

    def given(names: list[str]) -> list[str]:  # all of them, recorded in every fold, or none
        cols = [f"weight_{m}" for m in names]
        ok = set(cols) <= set(rows.columns) and not rows.empty and rows[cols].notna().all().all()
        return cols if ok else []

    cols = given(["fused", "text", "audio"]) + given(["linear"])
    if not cols:
        return None
    w = rows[cols]
    parts = [f"{c.removeprefix('weight_')} {w[c].mean():.2f} (in {int((w[c] > 0).sum())} of "
             f"{len(w)} folds)" for c in cols]
    return (f"Member weights of {method} (mean over folds; chosen by inner cross-validation, "
            f"docs/model.md \"Members\"; linear: the regression's share of the final "
            f"average): " + ", ".join(parts) + ".")


def headline_metrics(summary: Mapping[str, Any], reference: str = "hilbert",
                     digits: int = 4, network: str | None = None,
                     fit_seconds: float | None = None) -> dict[str, Any]:
    """The short metrics file DVC tracks: what a reader compares across experiments.

    ``hilbert_f1`` (the reference's mean macro-F1 over the folds), ``best`` (the best
    alternative, named) and ``best_f1``, and ``diff`` (the paired mean macro-F1 difference)
    with its 95 % interval ``ci_lo``/``ci_hi``, and ``network_f1``: the network alone (the
    ``network`` method, see :func:`network_method`) when it is not the reference itself; every
    method and metric stays in
    ``metrics.json``. ``fit_seconds``: the seconds every fit of the evaluation took, summed
    (what an experiment cost). At most eight flat keys, so ``dvc metrics show`` fits a wide
    terminal.
    """
    out: dict[str, Any] = {}
    if reference in summary:
        out[f"{reference}_f1"] = _round(summary[reference]["macro_f1"]["mean"], digits)
    if network is not None and network != reference and network in summary:
        out["network_f1"] = _round(summary[network]["macro_f1"]["mean"], digits)
    verdict = (summary.get("paired") or {}).get("verdict") or {}
    best = verdict.get("best_alternative")
    if best:
        lo, hi = verdict["ci95"]
        out.update(best=best, best_f1=_round(summary[best]["macro_f1"]["mean"], digits),
                   diff=_round(verdict["mean_diff"], digits), ci_lo=_round(lo, digits),
                   ci_hi=_round(hi, digits))
    if fit_seconds is not None:
        out["fit_seconds"] = round(float(fit_seconds), 1)
    return out


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)
