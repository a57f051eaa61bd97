"""Paired comparison of methods evaluated on the identical folds.

Every method is scored on the same (repeat, fold) partitions, so the right question is not whether
two mean ± std intervals overlap but how the *per-fold difference* behaves. For the reference
method R (HILBERT) and each other method M:

* ``d_i = score_R(fold i) − score_M(fold i)`` over the n folds of every repeat;
* mean, sample std and a 95 % interval of the mean difference with the **corrected resampled t**
  of Nadeau & Bengio (2003): ``var = (1/n + n_test/n_train) · s²``, ``t`` with n − 1 degrees of
  freedom. Folds of repeated cross-validation share training documents, so the plain
  ``s²/n`` would be far too optimistic;
* wins / ties / losses: folds where R scores higher / equal (``|d| < TIE``) / lower.

The verdict names the best alternative (the highest mean among the methods whose role is
``baseline``: what a user would otherwise run) and says whether R is better than (interval above
0), worse than (interval below 0) or indistinguishable from it (interval contains 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.metrics import aggregate

#: two fold scores closer than this count as a tie
TIE = 1e-9


def paired_differences(fold_table: pd.DataFrame, reference: str, other: str,
                       metric: str = "macro_f1") -> pd.DataFrame:
    """Per-fold ``repeat, fold, reference, other, diff`` on the folds both methods were scored on.

    A fold where either score is undefined (e.g. AUC of a one-class fold) is left out."""
    key = ["repeat", "fold"]
    cols = key + [metric, "n_train", "n_test"]
    a = fold_table.loc[fold_table["method"] == reference, cols]
    b = fold_table.loc[fold_table["method"] == other, key + [metric]]
    if a.empty or b.empty:
        missing = reference if a.empty else other
        raise ValueError(f"no fold scores for method {missing!r}")
    m = a.merge(b, on=key, suffixes=("_ref", "_other"))
    m = m.rename(columns={f"{metric}_ref": "reference", f"{metric}_other": "other"})
    m = m.dropna(subset=["reference", "other"])
    m["diff"] = m["reference"].astype(float) - m["other"].astype(float)
    return m.reset_index(drop=True)


def paired_summary(diffs: pd.DataFrame, ci: str = "corrected_t") -> dict[str, Any]:
    """Mean difference, std, 95 % interval (``ci``: corrected_t or t) and wins/ties/losses."""
    d = diffs["diff"].to_numpy(dtype=np.float64)
    ratio = float((diffs["n_test"] / diffs["n_train"]).mean()) if len(diffs) else None
    agg = aggregate(d.tolist(), ci=ci, test_train_ratio=ratio)
    return {"mean_diff": agg["mean"], "std": agg["std"], "ci95": agg["ci95"], "n_folds": agg["n"],
            "wins": int((d > TIE).sum()), "ties": int((np.abs(d) <= TIE).sum()),
            "losses": int((d < -TIE).sum())}


def paired_comparison(fold_table: pd.DataFrame, reference: str = "hilbert",
                      metric: str = "macro_f1", ci: str = "corrected_t"
                      ) -> dict[str, dict[str, Any]]:
    """``{other method: paired_summary}`` of ``reference − other`` for every other method."""
    others = [str(m) for m in pd.unique(fold_table["method"]) if m != reference]
    return {m: paired_summary(paired_differences(fold_table, reference, m, metric), ci)
            for m in others}


def verdict(paired: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any],
            roles: Mapping[str, str], reference: str = "hilbert",
            metric: str = "macro_f1") -> dict[str, Any]:
    """The best alternative (role ``baseline``, highest mean) and one plain sentence: better
    than / indistinguishable from / worse than it by the paired interval, or ``untested`` where
    there is no interval (one fold: a fixed train/test split)."""
    cands = [(summary[m][metric]["mean"], m) for m in paired
             if roles.get(m) == "baseline" and summary.get(m, {}).get(metric, {}).get("mean")
             is not None]
    if not cands:
        return {"best_alternative": None, "verdict": None,
                "sentence": f"No baseline was evaluated next to {reference}."}
    best = max(cands)[1]
    p = paired[best]
    lo, hi = p["ci95"]
    if lo is None or hi is None:  # one fold (a fixed train/test split): no interval to read
        diff = "–" if p["mean_diff"] is None else f"{p['mean_diff']:+.3f}"
        sentence = (f"{reference} against the best alternative, {best}: {metric} difference "
                    f"{diff} on {p['n_folds']} fold(s), too few for an interval, so not evidence "
                    "either way (without a split column the evaluation repeats k-fold "
                    "cross-validation and gives one).")
        return {"best_alternative": best, "verdict": "untested", "mean_diff": p["mean_diff"],
                "ci95": [lo, hi], "sentence": sentence}
    if lo > 0:
        word = "better than"
    elif hi < 0:
        word = "worse than"
    else:
        word = "indistinguishable from"
    rng = f", 95 % interval [{lo:+.3f}, {hi:+.3f}]"
    sentence = (f"{reference} is {word} the best alternative, {best}: mean paired {metric} "
                f"difference {p['mean_diff']:+.3f}{rng}, {p['wins']} wins / {p['ties']} ties / "
                f"{p['losses']} losses over {p['n_folds']} folds.")
    return {"best_alternative": best, "verdict": word.split()[0], "mean_diff": p["mean_diff"],
            "ci95": [lo, hi], "sentence": sentence}


def paired_markdown(paired: Mapping[str, Mapping[str, Any]], verdict_: Mapping[str, Any],
                    reference: str = "hilbert", metric: str = "macro_f1") -> str:
    """The paired section of ``comparison.md``."""
    lines = [f"## Paired comparison: {reference} minus each method ({metric})", "",
             f"Per-fold differences on identical folds; mean, 95 % corrected resampled t-interval "
             f"(Nadeau-Bengio), wins / ties / losses of {reference}.", "",
             "| method | mean difference | 95 % interval | wins / ties / losses |",
             "|---|---|---|---|"]
    for m, p in paired.items():
        lo, hi = p["ci95"]
        ci_txt = "–" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]"
        mean = "–" if p["mean_diff"] is None else f"{p['mean_diff']:+.3f}"
        lines.append(f"| {m} | {mean} | {ci_txt} | {p['wins']} / {p['ties']} / {p['losses']} |")
    lines += ["", f"**{verdict_['sentence']}**", ""]
    return "\n".join(lines)

