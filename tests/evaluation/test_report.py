"""``evaluation.report``: the short DVC metrics file built from a summary."""

from __future__ import annotations

import pandas as pd

from hilbert_pipeline.evaluation.report import (
    form_sentence,
    headline_metrics,
    network_method,
    network_sentence,
)


def _m(mean):
    return {"macro_f1": {"mean": mean}, "balanced_accuracy": {"mean": mean + 0.01}}


def test_headline_names_the_best_alternative_and_the_paired_difference():
    summary = {"hilbert": _m(0.51234), "text_logreg": _m(0.53), "majority": _m(0.1),
               "paired": {"verdict": {"best_alternative": "text_logreg", "mean_diff": -0.01766,
                                      "ci95": [-0.05, 0.015]}}}
    assert headline_metrics(summary) == {"hilbert_f1": 0.5123, "best": "text_logreg",
                                         "best_f1": 0.53, "diff": -0.0177, "ci_lo": -0.05,
                                         "ci_hi": 0.015}


def test_headline_without_alternative_or_interval():
    assert headline_metrics({"hilbert": _m(0.5)}) == {"hilbert_f1": 0.5}
    summary = {"hilbert": _m(0.5), "x": _m(0.4),
               "paired": {"verdict": {"best_alternative": "x", "mean_diff": 0.1,
                                      "ci95": [None, None]}}}
    out = headline_metrics(summary)
    assert out["ci_lo"] is None and out["diff"] == 0.1


def test_form_sentence_counts_the_folds_of_each_form():
    fm = pd.DataFrame({"method": ["hilbert"] * 3 + ["concat_logreg"],
                       "form": ["mixture", "mixture", "residual", None]})
    text = form_sentence(fm)
    assert "a weighted average of the trained network and its linear member (wide path; the " \
        "weight, 0 to 1/2, chosen by inner cross-validation unless set) in 2 of 3 folds" in text
    assert "the trained network on top of its linear member (wide path) in 1 of 3 folds" in text
    assert form_sentence(fm, "concat_logreg") is None
    assert form_sentence(fm.drop(columns="form")) is None


def test_the_network_alone_stands_beside_the_final_scores():
    summary = {"hilbert": _m(0.61), "no_wide": _m(0.58), "text_logreg": _m(0.6),
               "concat_logreg": _m(0.55), "majority": _m(0.2)}
    mixture = pd.DataFrame({"method": ["hilbert", "no_wide"], "form": ["mixture", "deep"]})
    assert network_method(mixture) == "no_wide"
    assert headline_metrics(summary, network="no_wide")["network_f1"] == 0.58
    text = network_sentence(summary, "no_wide")
    assert "0.580" in text and "0.610 for hilbert" in text and "the best logistic " \
        "regression (text_logreg): 0.600" in text
    deep = pd.DataFrame({"method": ["hilbert", "with_wide"], "form": ["deep", "mixture"]})
    assert network_method(deep) == "hilbert"
    assert "hilbert is the trained network alone" in network_sentence(summary, "hilbert")
    assert "network_f1" not in headline_metrics(summary, network="hilbert")  # = hilbert_f1
    assert network_method(pd.DataFrame({"method": ["text_logreg"], "form": [None]})) is None
    assert network_sentence({"hilbert": _m(0.6)}, None) is None
    assert "network_f1" not in headline_metrics({"hilbert": _m(0.6)})


def test_members_sentence_gives_the_mean_weights_and_how_often_each_member_took_part():
    from hilbert_pipeline.evaluation.report import members_sentence

    fm = pd.DataFrame({"method": ["hilbert", "hilbert", "text_logreg"],
                       "weight_fused": [1.0, 0.5, None], "weight_text": [0.0, 0.5, None],
                       "weight_audio": [0.0, 0.0, None]})
    s = members_sentence(fm)
    assert "fused 0.75 (in 2 of 2 folds)" in s and "text 0.25 (in 1 of 2 folds)" in s
    assert "audio 0.00 (in 0 of 2 folds)" in s
    assert members_sentence(fm, "text_logreg") is None
    assert members_sentence(fm.drop(columns="weight_text")) is None
    # the linear member's share of the final average, beside the members' weights or alone
    fm["weight_linear"] = [0.0, 0.5, None]
    s = members_sentence(fm)
    assert "text 0.25 (in 1 of 2 folds)" in s and s.endswith("linear 0.25 (in 1 of 2 folds).")
    s = members_sentence(fm.drop(columns="weight_text"))
    assert "fused" not in s and "linear 0.25 (in 1 of 2 folds)" in s
