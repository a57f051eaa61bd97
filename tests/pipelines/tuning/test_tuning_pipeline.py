"""``kedro run --pipelines tuning`` end to end on tiny features, then training with use_tuned."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro_helpers import run_kedro
from tuning.tuning_tiny import TINY_SPACE

from hilbert_pipeline.experiment.synthetic import synthetic_features


@pytest.fixture
def project(kedro_project: Path, monkeypatch) -> Path:
    """The throw-away project copy; wide terminal so log lines are not wrapped."""
    monkeypatch.setenv("COLUMNS", "400")
    return kedro_project




def write_tiny_inputs(project: Path) -> None:
    """segment_features + documents as the embedding/segmentation pipelines would save them."""
    sf, documents = synthetic_features([8, 7, 6], n_segments=(3, 5), audio_dim=8, text_dim=6,
                                       signal=1.5, seed=0)
    with open(project / "data/04_feature/segment_features.pkl", "wb") as fh:
        pickle.dump(sf, fh)
    documents.to_parquet(project / "data/03_primary/documents.parquet")


def write_tiny_params(project: Path, n_trials: int = 3) -> dict:
    base = project / "conf" / "base"
    tuning = yaml.safe_load((base / "parameters_tuning.yml").read_text())["tuning"]
    training = yaml.safe_load((base / "parameters_training.yml").read_text())["training"]
    tuning.update(n_trials=n_trials, n_folds=3, n_startup_trials=2, heartbeat_interval=1,
                  grace_period=3, progress=False, search_space=TINY_SPACE,
                  optim_overrides={"epochs": 3, "patience": 3},
                  pruner={"startup_trials": 2, "warmup_steps": 1})
    training.update(device="cpu", progress=False)
    training["model"].update(d=16, n_heads=2, pool_hops=2, n_experts=2, expert_hidden=16)
    training["optim"].update(epochs=3, batch_size=6, min_epochs=1, patience=3)
    local = project / "conf" / "local"
    (local / "parameters_tiny.yml").write_text(yaml.safe_dump(
        {"tuning": tuning, "training": training,
         "classes": {"label_map": {}, "min_class_size": 1}}))
    return tuning


@pytest.mark.slow
def test_tuning_pipeline_then_training_uses_best_params(project):
    kedro_project = project
    write_tiny_inputs(kedro_project)
    write_tiny_params(kedro_project, n_trials=3)
    run_kedro(kedro_project, "run", "--pipelines", "tuning")

    reporting = kedro_project / "data" / "08_reporting"
    assert (kedro_project / "data/06_models/optuna.db").is_file()
    best = json.loads((kedro_project / "data/06_models/best_params.json").read_text())
    assert set(best) == {"lambda_dual", "lambda_cka", "lambda_mi", "n_experts", "top_k",
                         "dropout", "d", "lr"}
    summary = json.loads((reporting / "tuning_summary.json").read_text())
    assert summary["best_params"] == best and summary["n_trials_budget"] == 3
    assert summary["study_name"] == f"hilbert-{summary['fingerprint']}"
    assert sum(summary["trial_states"].values()) == 3
    trials = pd.read_csv(reporting / "tuning_trials.csv")
    assert list(trials["number"]) == [0, 1, 2]
    assert "plotly" in (reporting / "tuning_history.html").read_text()[:100000].lower()
    assert (reporting / "tuning_importance.html").stat().st_size > 0

    # training reads the tuned parameters
    run_kedro(kedro_project, "run", "--pipelines", "training", "--params",
              "training.use_tuned=true")
    trained = json.loads((reporting / "training_summary.json").read_text())
    assert trained["tuned_params"] == best
    for k in ("lambda_dual", "lambda_cka", "lambda_mi", "n_experts", "top_k", "dropout", "d"):
        assert trained["config"][k] == best[k]
    assert trained["training_params"]["lr"] == best["lr"]


def test_bad_tuning_parameter_fails_with_its_name(project):
    kedro_project = project
    write_tiny_inputs(kedro_project)
    write_tiny_params(kedro_project)
    proc = run_kedro(kedro_project, "run", "--pipelines", "tuning", "--params",
                     "tuning.n_folds=1", check=False)
    assert proc.returncode != 0
    assert "tuning.n_folds must be an integer >= 2" in proc.stdout + proc.stderr
