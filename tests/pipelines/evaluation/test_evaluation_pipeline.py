"""``kedro run --pipelines evaluation`` on tiny synthetic features (real Kedro, real files)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import yaml
from kedro_helpers import run_kedro

from hilbert_pipeline.experiment.synthetic import synthetic_features

METHODS = ["hilbert", "concat_logreg", "majority", "mlp_head"]


def _setup(project: Path, class_sizes=(7, 6, 4, 2), label_map=None, min_class_size=1,
           **evaluation_changes) -> pd.DataFrame:
    sf, documents = synthetic_features(list(class_sizes), n_segments=(2, 4), audio_dim=8,
                                       text_dim=6, signal=1.5, seed=1)
    with open(project / "data/04_feature/segment_features.pkl", "wb") as fh:
        pickle.dump(sf, fh)
    documents.to_parquet(project / "data/03_primary/documents.parquet")
    base = project / "conf" / "base"
    training = yaml.safe_load((base / "parameters_training.yml").read_text())["training"]
    training.update(device="cpu", progress=False)
    training["model"].update(d=8, n_heads=2, pool_hops=2, n_experts=2)
    training["optim"].update(epochs=2, batch_size=4, min_epochs=1, num_threads=1)
    evaluation = yaml.safe_load((base / "parameters_evaluation.yml").read_text())["evaluation"]
    evaluation.update(n_splits=3, n_repeats=1, methods=METHODS, progress=False, **evaluation_changes)
    classes = {"label_map": dict(label_map or {}), "min_class_size": min_class_size}
    (project / "conf/local/parameters_tiny.yml").write_text(
        yaml.safe_dump({"training": training, "evaluation": evaluation, "classes": classes}))
    return documents


def test_evaluation_outputs_and_label_handling(kedro_project: Path):
    # c3 (2 documents) is below min_class_size and is dropped, each document listed
    documents = _setup(kedro_project, min_class_size=3, label_map={"c2": "merged"})
    proc = run_kedro(kedro_project, "run", "--pipelines", "evaluation")
    rep = kedro_project / "data/08_reporting"
    metrics = json.loads((rep / "metrics.json").read_text())
    assert list(metrics) == METHODS + ["paired"]
    assert set(metrics["paired"]["methods"]) == set(METHODS) - {"hilbert"}
    labels = json.loads((rep / "evaluation_labels.json").read_text())
    assert labels["label_names"] == ["c0", "c1", "merged"]
    assert labels["dropped_classes"] == ["c3"]
    assert sorted(e["doc_id"] for e in labels["excluded"]) == sorted(
        documents.loc[documents["label"] == "c3", "doc_id"])
    folds = pd.read_csv(kedro_project / "data/05_model_input/folds.csv", dtype={"doc_id": str})
    assert folds.groupby(["repeat", "fold"]).ngroups == 3
    fm = pd.read_csv(rep / "fold_metrics.csv")
    assert sorted(fm["method"].unique()) == sorted(METHODS)
    pc = pd.read_csv(rep / "per_class_metrics.csv")
    assert set(pc["class"]) == {"c0", "c1", "merged"}
    gates = pd.read_csv(rep / "gate_usage.csv")
    assert set(gates["method"]) == {"hilbert"} and len(gates) == 2
    mi = json.loads((rep / "mi_estimates.json").read_text())
    assert set(mi) == {"hilbert", "mlp_head"} and set(mi["hilbert"]) == {"mi_audio", "mi_text"}
    for name in ("confusion_hilbert.png", "confusion_best_baseline.png"):
        assert (rep / name).stat().st_size > 1000
    md = (rep / "comparison.md").read_text()
    assert "| concat_logreg | baseline |" in md
    assert "| hilbert | proposed |" in proc.stderr + proc.stdout  # the table is logged
    preds = pd.read_parquet(kedro_project / "data/07_model_output/evaluation_predictions.parquet")
    assert len(preds) == len(METHODS) * 17


def test_classes_smaller_than_the_folds_are_an_error(kedro_project: Path):
    _setup(kedro_project, class_sizes=(6, 5, 2, 1), min_class_size=1)
    proc = run_kedro(kedro_project, "run", "--pipelines", "evaluation", check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert "fewer documents than the 3 folds" in out and "'c2': 2" in out and "'c3': 1" in out
    assert not (kedro_project / "data/08_reporting/metrics.json").exists()
