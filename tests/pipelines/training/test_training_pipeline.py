"""The ``training`` pipeline in memory (DataCatalog + SequentialRunner) on tiny synthetic
features: what the node writes, the class definition, the split column and ``use_tuned``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from memory_runner import run_in_memory
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set, collate
from hilbert_pipeline.pipelines.training import create_pipeline
from hilbert_pipeline.training.checkpoint import load_checkpoint, model_from_payload, save_payload
from hilbert_pipeline.training.params import ParamsError


def _inputs() -> tuple[dict, pd.DataFrame]:
    sf, documents = synthetic_features([7, 6, 3], n_segments=(2, 4), audio_dim=8, text_dim=6,
                                       signal=1.5, seed=0, split_test_fraction=0.25)
    documents.loc[documents["label"] == "c2", "label"] = "Whig"  # merged by the class definition
    return sf, documents


def _params(**training_changes) -> dict:
    return {"training": {"device": "cpu", "progress": False, **training_changes,
                         "model": {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2},
                         "optim": {"epochs": 3, "batch_size": 4, "min_epochs": 1,
                                   "num_threads": 1}},
            "classes": {"label_map": {"Whig": "other"}, "min_class_size": 1}}


def _run(**training_changes) -> dict:
    sf, documents = _inputs()
    return run_in_memory(create_pipeline(), inputs={"segment_features": sf,
                                                    "documents": documents},
                         params=_params(**training_changes))


def test_a_modality_without_signal_still_trains_the_network():
    """Audio is noise: the network is trained all the same (the old default predicted with the
    text logistic regression alone here, nothing trained); the curves carry no such note."""
    import numpy as np

    sf, documents = _inputs()
    sf["audio"] = np.random.default_rng(0).normal(size=sf["audio"].shape).astype(np.float32)
    out = run_in_memory(create_pipeline(), inputs={"segment_features": sf,
                                                   "documents": documents}, params=_params())
    summary = out["training_summary"]
    assert summary["form"] == "mixture" and summary["config"]["wide_weight"] == "auto"
    assert summary["members"]["linear"] <= 0.5  # the network carries at least half
    assert out["training_history"]["epoch"].min() == 1 and summary["epochs_run"] >= 1
    texts = [t.get_text() for ax in out["training_curves"].axes for t in ax.texts]
    assert not any("No network trained" in t for t in texts)


def test_training_pipeline_writes_a_reloadable_checkpoint(tmp_path: Path):
    sf, documents = _inputs()
    out = _run()
    summary = out["training_summary"]
    # the split column: only training-split documents are used, the others are listed
    n_train = int((documents["split"] == "train").sum())
    assert summary["n_documents"] == n_train
    assert len(summary["excluded"]) == len(documents) - n_train
    assert set(summary["classes"]) == {"c0", "c1", "other"}  # Whig -> other (label_map)
    assert summary["params_source"] == "parameters"
    hist = out["training_history"]
    assert {"train_total", "train_cls", "train_dual", "train_cka", "train_mi", "train_lb",
            "train_mi_audio", "train_mi_text", "val_macro_f1"} <= set(hist.columns)
    # the default: the trained network averaged with its linear member, weight by inner CV
    # (one row per epoch run, no untrained "epoch 0")
    assert summary["form"] == "mixture" and summary["config"]["wide_path"] is True
    assert summary["members"]["linear"] in (0.0, 0.25, 0.5)
    assert hist["epoch"].tolist() == list(range(1, summary["epochs_run"] + 1))
    assert len(out["training_curves"].axes) >= 1

    # the payload the catalog writes, through a real file
    ck = load_checkpoint(save_payload(tmp_path / "hilbert_model.pt", out["hilbert_model"]))
    assert ck.label_names == ["c0", "c1", "other"]
    assert ck.extra["best_epoch"] == summary["best_epoch"]
    assert ck.extra["contract"]["label_map"] == {"Whig": "other"}
    assert ck.encoder_meta == sf["meta"]
    docs, _ = build_document_set(sf, documents, label_map={"Whig": "other"})
    b = collate(docs, range(len(docs)))
    with torch.no_grad():
        logits = ck.model(b["audio"], b["text"], b["audio_mask"], b["text_mask"]).logits
    assert logits.shape == (len(docs), 3) and torch.isfinite(logits).all()
    # the form and the linear member's weight travel with the checkpoint: the reloaded model
    # is the same model
    assert ck.model.config.prediction_form == "mixture"
    assert float(ck.model.wide_weight) == summary["members"]["linear"]
    with torch.no_grad():
        again = model_from_payload(out["hilbert_model"]).model(
            b["audio"], b["text"], b["audio_mask"], b["text_mask"]).logits
    torch.testing.assert_close(logits, again)


def test_use_tuned_without_file_fails_with_advice(tmp_path: Path):
    with pytest.raises(ParamsError, match="tuning pipeline"):
        _run(use_tuned=True, best_params_path=str(tmp_path / "best_params.json"))


def test_use_tuned_overrides_parameters(tmp_path: Path):
    best = {"lambda_cka": 0.3, "n_experts": 3, "lr": 0.004}
    path = tmp_path / "best_params.json"
    path.write_text(json.dumps(best))
    out = _run(use_tuned=True, best_params_path=str(path))
    summary = out["training_summary"]
    assert summary["tuned_params"] == best and summary["params_source"] == str(path)
    assert summary["config"]["n_experts"] == 3 and summary["config"]["lambda_cka"] == 0.3
    assert summary["training_params"]["lr"] == 0.004
    assert model_from_payload(out["hilbert_model"]).config.n_experts == 3


def test_the_log_names_the_linear_weight_without_member_weights(caplog):
    """A network without unimodal members whose linear weight is chosen by the inner CV logs
    that weight and no member weights (it has none to log)."""
    import logging

    sf, documents = _inputs()
    params = _params()
    params["training"]["model"]["unimodal_members"] = False
    with caplog.at_level(logging.INFO, logger="hilbert_pipeline.pipelines.training.nodes"):
        out = run_in_memory(create_pipeline(), inputs={"segment_features": sf,
                                                       "documents": documents}, params=params)
    text = caplog.text
    w = out["training_summary"]["members"]["linear"]
    assert f"the linear member's weight in the final average: {w:.2f}" in text
    assert "member weights" not in text
