"""The ``evaluation`` pipeline in memory (DataCatalog + SequentialRunner) on tiny synthetic
features: every report, the class definition and the folds (the same seed giving the same
metrics: tests/experiment/test_trainer.py and the end-to-end test)."""

from __future__ import annotations

import json
import logging

import pytest
from memory_runner import run_in_memory
from synthetic import synthetic_features

from hilbert_pipeline.pipelines.evaluation import create_pipeline
from hilbert_pipeline.pipelines.evaluation.nodes import report_node, tuned_on_test_documents

METHODS = ["hilbert", "no_wide", "concat_logreg", "majority", "mlp_head"]


def _run(class_sizes=(7, 6, 4, 2), label_map=None, min_class_size=1):
    sf, documents = synthetic_features(list(class_sizes), n_segments=(2, 4), audio_dim=8,
                                       text_dim=6, signal=1.5, seed=1)
    params = {
        "training": {"device": "cpu", "progress": False,
                     "model": {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2},
                     "optim": {"epochs": 2, "batch_size": 4, "min_epochs": 1,
                               "num_threads": 1}},
        "evaluation": {"n_splits": 3, "n_repeats": 1, "methods": METHODS, "progress": False,
                       "n_jobs": 1},
        "classes": {"label_map": dict(label_map or {}), "min_class_size": min_class_size},
    }
    out = run_in_memory(create_pipeline(), params=params,
                        inputs={"segment_features": sf, "documents": documents})
    return out, documents


def test_evaluation_outputs_and_label_handling(caplog):
    # c3 (2 documents) is below min_class_size and is dropped, each document listed
    with caplog.at_level(logging.INFO):
        out, documents = _run(min_class_size=3, label_map={"c2": "merged"})
    metrics = out["metrics"]
    assert list(metrics) == METHODS + ["paired", "platform"]
    assert set(metrics["paired"]["methods"]) == set(METHODS) - {"hilbert"}
    labels = out["evaluation_labels"]
    assert labels["label_names"] == ["c0", "c1", "merged"]
    assert labels["dropped_classes"] == ["c3"]
    assert sorted(e["doc_id"] for e in labels["excluded"]) == sorted(
        documents.loc[documents["label"] == "c3", "doc_id"])
    assert out["evaluation_folds"].groupby(["repeat", "fold"]).ngroups == 3
    assert sorted(out["fold_metrics"]["method"].unique()) == sorted(METHODS)
    assert set(out["per_class_metrics"]["class"]) == {"c0", "c1", "merged"}
    gates = out["gate_usage"]
    # no_wide is hilbert's own network (one fit): the same gates and MI estimates
    assert set(gates["method"]) == {"hilbert", "no_wide"} and len(gates) == 4
    mi = out["mi_estimates"]
    assert set(mi) == {"hilbert", "no_wide", "mlp_head"}
    assert set(mi["hilbert"]) == {"mi_audio", "mi_text"}
    for name in ("confusion_hilbert", "confusion_best_baseline"):
        assert len(out[name].axes) >= 1
    assert "| concat_logreg | baseline |" in out["comparison_table"]
    assert "| hilbert | proposed |" in caplog.text  # the table is logged
    # the default: hilbert averages the trained network with its linear member in every fold,
    # the weight per fold recorded, and the report says so beside the network alone (no_wide)
    fm = out["fold_metrics"]
    assert fm.loc[fm["method"] == "hilbert", "form"].tolist() == ["mixture"] * 3
    assert fm.loc[fm["method"] == "no_wide", "form"].tolist() == ["deep"] * 3
    assert fm.loc[fm["method"] == "hilbert", "weight_linear"].between(0, 0.5).all()
    assert fm.loc[fm["method"] == "concat_logreg", "form"].isna().all()
    table = out["comparison_table"]
    assert "Form of hilbert's prediction" in table
    assert "a weighted average of the trained network and its linear member" in table
    assert "The network alone (`no_wide`, no linear member)" in table
    assert "linear: the regression's share of the final average" in table
    headline = out["headline_metrics"]
    assert headline["best"] in set(METHODS) - {"hilbert", "majority"}
    assert headline["fit_seconds"] == pytest.approx(fm["seconds"].sum(), abs=0.1)
    assert len(out["evaluation_predictions"]) == len(METHODS) * 17
    json.dumps(metrics, allow_nan=False)  # the metrics file is plain JSON
    assert "caution" not in metrics["paired"]["verdict"]

    # the same fold results reported for tuned hyper-parameters: the folds test on documents
    # the tuning study saw (no split column), which the report must say
    tuned = report_node(out["evaluation_predictions"], out["fold_metrics"],
                        out["gate_usage_folds"], out["mi_estimates_folds"], labels,
                        {"ci": "corrected_t"}, {"use_tuned": True})
    caution = tuned[0]["paired"]["verdict"]["caution"]
    assert "optimistic" in caution and "`split` column" in caution
    assert caution in tuned[3] and caution not in out["comparison_table"]
    assert tuned_on_test_documents({"use_tuned": True}, {**labels, "fixed_split": True}) is None
    assert tuned_on_test_documents({"use_tuned": False}, labels) is None


def test_classes_smaller_than_the_folds_are_an_error():
    with pytest.raises(Exception) as err:
        _run(class_sizes=(6, 5, 2, 1), min_class_size=1)
    msg = str(err.value)
    assert "fewer documents than the 3 folds" in msg and "'c2': 2" in msg and "'c3': 1" in msg
