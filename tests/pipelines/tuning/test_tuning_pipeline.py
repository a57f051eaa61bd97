"""The ``tuning`` pipeline in memory (DataCatalog + SequentialRunner) on tiny features with a real
SQLite study, then the training pipeline reading the tuned parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memory_runner import run_in_memory
from synthetic import synthetic_features
from tuning.tuning_tiny import TINY_SPACE

from hilbert_pipeline.pipelines.training import create_pipeline as training_pipeline
from hilbert_pipeline.pipelines.tuning import create_pipeline as tuning_pipeline
from hilbert_pipeline.tuning.objective import TuningDataError


def _inputs() -> dict:
    sf, documents = synthetic_features([8, 7, 6], n_segments=(3, 5), audio_dim=8, text_dim=6,
                                       signal=1.5, seed=0)
    return {"segment_features": sf, "documents": documents}


def _params(tmp_path: Path, **tuning_changes) -> dict:
    return {
        "tuning": {"n_trials": 3, "n_folds": 3, "n_startup_trials": 2, "heartbeat_interval": 1,
                   "grace_period": 3, "progress": False, "search_space": TINY_SPACE,
                   "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
                   "optim_overrides": {"epochs": 3, "patience": 3},
                   "pruner": {"startup_trials": 2, "warmup_steps": 1}, **tuning_changes},
        "training": {"device": "cpu", "progress": False,
                     "model": {"d": 16, "n_heads": 2, "pool_hops": 2, "n_experts": 2,
                               "expert_hidden": 16, "wide_path": False},
                     "optim": {"epochs": 3, "batch_size": 6, "min_epochs": 1, "patience": 3}},
        "classes": {"label_map": {}, "min_class_size": 1},
    }


@pytest.mark.slow
def test_tuning_pipeline_then_training_uses_best_params(tmp_path: Path):
    params = _params(tmp_path)
    out = run_in_memory(tuning_pipeline(), inputs=_inputs(), params=params)
    assert (tmp_path / "optuna.db").is_file()
    best = out["best_params"]
    assert set(best) == {"lambda_dual", "lambda_cka", "lambda_mi", "n_experts", "top_k",
                         "dropout", "d", "lr"}
    summary = out["tuning_summary"]
    assert summary["best_params"] == best and summary["n_trials_budget"] == 3
    assert summary["study_name"] == f"hilbert-{summary['fingerprint']}"
    assert sum(summary["trial_states"].values()) == 3
    assert list(out["tuning_trials"]["number"]) == [0, 1, 2]
    assert "plotly" in out["tuning_history_plot"][:100000].lower()
    assert out["tuning_importance_plot"]

    # training reads the tuned parameters (the file the catalog writes)
    path = tmp_path / "best_params.json"
    path.write_text(json.dumps(best))
    params["training"].update(use_tuned=True, best_params_path=str(path))
    trained = run_in_memory(training_pipeline(), inputs=_inputs(),
                            params=params)["training_summary"]
    assert trained["tuned_params"] == best
    for k in ("lambda_dual", "lambda_cka", "lambda_mi", "n_experts", "top_k", "dropout", "d"):
        assert trained["config"][k] == best[k]
    assert trained["training_params"]["lr"] == best["lr"]


def test_bad_tuning_parameter_fails_with_its_name(tmp_path: Path):
    with pytest.raises(TuningDataError, match=r"tuning.n_folds must be an integer >= 2"):
        run_in_memory(tuning_pipeline(), inputs=_inputs(), params=_params(tmp_path, n_folds=1))
