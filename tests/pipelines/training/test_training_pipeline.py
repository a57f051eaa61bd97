"""``kedro run --pipelines training`` on tiny synthetic features (real Kedro, real files)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import torch
import yaml
from kedro_helpers import run_kedro

from hilbert_pipeline.experiment.checkpoint import load_checkpoint
from hilbert_pipeline.experiment.data import build_document_set, collate
from hilbert_pipeline.experiment.synthetic import synthetic_features


def _setup(project: Path, **training_changes) -> tuple[dict, pd.DataFrame]:
    sf, documents = synthetic_features([7, 6, 3], n_segments=(2, 4), audio_dim=8, text_dim=6,
                                       signal=1.5, seed=0, split_test_fraction=0.25)
    documents.loc[documents["label"] == "c2", "label"] = "Whig"  # merged by the class definition
    with open(project / "data/04_feature/segment_features.pkl", "wb") as fh:
        pickle.dump(sf, fh)
    documents.to_parquet(project / "data/03_primary/documents.parquet")
    base = project / "conf" / "base"
    training = yaml.safe_load((base / "parameters_training.yml").read_text())["training"]
    training.update(device="cpu", progress=False, **training_changes)
    training["model"].update(d=8, n_heads=2, pool_hops=2, n_experts=2)
    training["optim"].update(epochs=3, batch_size=4, min_epochs=1, num_threads=1)
    (project / "conf/local/parameters_tiny.yml").write_text(yaml.safe_dump(
        {"training": training, "classes": {"label_map": {"Whig": "other"}, "min_class_size": 1}}))
    return sf, documents


def test_training_pipeline_writes_a_reloadable_checkpoint(kedro_project: Path):
    sf, documents = _setup(kedro_project)
    run_kedro(kedro_project, "run", "--pipelines", "training")
    rep = kedro_project / "data/08_reporting"
    summary = json.loads((rep / "training_summary.json").read_text())
    # the split column: only training-split documents are used, the others are listed
    n_train = int((documents["split"] == "train").sum())
    assert summary["n_documents"] == n_train
    assert len(summary["excluded"]) == len(documents) - n_train
    assert set(summary["classes"]) == {"c0", "c1", "other"}  # Whig -> other (label_map)
    assert summary["params_source"] == "parameters"
    hist = pd.read_csv(rep / "training_history.csv")
    assert {"train_total", "train_cls", "train_dual", "train_cka", "train_mi", "train_lb",
            "train_mi_audio", "train_mi_text", "val_macro_f1"} <= set(hist.columns)
    # one row per epoch run, plus "epoch 0": the untrained start (the wide path's logistic
    # regression), itself a candidate of early stopping
    assert hist["epoch"].tolist() == list(range(summary["epochs_run"] + 1))
    assert (rep / "training_curves.png").stat().st_size > 1000

    ck = load_checkpoint(kedro_project / "data/06_models/hilbert_model.pt")
    assert ck.label_names == ["c0", "c1", "other"]
    assert ck.extra["best_epoch"] == summary["best_epoch"]
    assert ck.encoder_meta == sf["meta"]
    docs, _ = build_document_set(sf, documents, label_map={"Whig": "other"})
    b = collate(docs, range(len(docs)))
    with torch.no_grad():
        logits = ck.model(b["audio"], b["text"], b["audio_mask"], b["text_mask"]).logits
    assert logits.shape == (len(docs), 3) and torch.isfinite(logits).all()


def test_use_tuned_without_file_fails_with_advice(kedro_project: Path):
    _setup(kedro_project, use_tuned=True)
    proc = run_kedro(kedro_project, "run", "--pipelines", "training", check=False)
    assert proc.returncode != 0
    assert "tuning pipeline" in proc.stderr + proc.stdout
    assert not (kedro_project / "data/06_models/hilbert_model.pt").exists()


def test_use_tuned_overrides_parameters(kedro_project: Path):
    _setup(kedro_project, use_tuned=True)
    best = {"lambda_cka": 0.3, "n_experts": 3, "lr": 0.004}
    (kedro_project / "data/06_models/best_params.json").write_text(json.dumps(best))
    run_kedro(kedro_project, "run", "--pipelines", "training")
    summary = json.loads((kedro_project / "data/08_reporting/training_summary.json").read_text())
    assert summary["tuned_params"] == best
    assert summary["config"]["n_experts"] == 3 and summary["config"]["lambda_cka"] == 0.3
    assert summary["training_params"]["lr"] == 0.004
    ck = load_checkpoint(kedro_project / "data/06_models/hilbert_model.pt")
    assert ck.config.n_experts == 3
