"""Paired comparison statistics against a hand computation on a small table."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import t as student_t

from hilbert_pipeline.evaluation import statistics as st


def _table() -> pd.DataFrame:
    # 2 repeats x 2 folds; n_train 30, n_test 10 in every fold
    rows = []
    scores = {"hilbert": [0.60, 0.70, 0.65, 0.55], "logreg": [0.50, 0.70, 0.60, 0.60],
              "weak": [0.30, 0.35, 0.40, 0.30]}
    for m, vals in scores.items():
        for i, v in enumerate(vals):
            rows.append({"method": m, "repeat": i // 2, "fold": i % 2, "macro_f1": v,
                         "n_train": 30, "n_test": 10})
    return pd.DataFrame(rows)


def test_paired_summary_matches_hand_computation():
    d = [0.10, 0.00, 0.05, -0.05]  # hilbert - logreg per fold
    n = 4
    mean = sum(d) / n
    s2 = sum((x - mean) ** 2 for x in d) / (n - 1)
    half = student_t.ppf(0.975, n - 1) * math.sqrt((1 / n + 10 / 30) * s2)
    p = st.paired_comparison(_table())["logreg"]
    assert p["mean_diff"] == pytest.approx(mean)
    assert p["std"] == pytest.approx(math.sqrt(s2))
    assert p["ci95"] == pytest.approx([mean - half, mean + half])
    assert (p["wins"], p["ties"], p["losses"]) == (2, 1, 1)
    assert p["n_folds"] == 4
    # the plain t-interval is narrower (it ignores the overlap of training sets)
    plain = st.paired_summary(st.paired_differences(_table(), "hilbert", "logreg"), ci="t")
    assert plain["ci95"][1] - plain["ci95"][0] < p["ci95"][1] - p["ci95"][0]


def test_verdict_names_the_best_baseline_and_reads_the_interval():
    table = _table()
    paired = st.paired_comparison(table)
    summary = {m: {"macro_f1": {"mean": g["macro_f1"].mean()}}
               for m, g in table.groupby("method")}
    roles = {"hilbert": "proposed", "logreg": "baseline", "weak": "baseline"}
    v = st.verdict(paired, summary, roles)
    assert v["best_alternative"] == "logreg"
    assert v["verdict"] == "indistinguishable"  # interval contains 0
    assert "logreg" in v["sentence"] and "2 wins / 1 ties / 1 losses" in v["sentence"]
    only_weak = {"hilbert": "proposed", "logreg": "ablation", "weak": "baseline"}
    v = st.verdict(paired, summary, only_weak)
    assert v["best_alternative"] == "weak" and v["verdict"] == "better"
    md = st.paired_markdown(paired, v)
    assert md.count("\n| ") == 3 and v["sentence"] in md
    # one fold (a fixed split): no interval, so no claim either way, however large the gap
    one = table[(table["repeat"] == table["repeat"].min()) & (table["fold"] == table["fold"].min())]
    v = st.verdict(st.paired_comparison(one), summary, roles)
    assert v["verdict"] == "untested" and v["ci95"] == [None, None]
    assert "too few for an interval, so not evidence either way" in v["sentence"]
    assert "indistinguishable" not in v["sentence"]


def test_folds_are_matched_by_repeat_and_fold_not_by_row_order():
    table = _table()
    shuffled = pd.concat([table[table.method == "hilbert"],
                          table[table.method == "logreg"].iloc[::-1]])
    a = st.paired_comparison(table)["logreg"]
    b = st.paired_comparison(shuffled)["logreg"]
    assert a == b
    with pytest.raises(ValueError, match="no fold scores"):
        st.paired_differences(table, "hilbert", "absent")
