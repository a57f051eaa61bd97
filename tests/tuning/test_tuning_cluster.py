"""Tuning on a real 2-process Dask LocalCluster: one study worker per Dask worker, one SQLite
study, exactly the trial budget, and the same outputs as a study run in-process."""

from __future__ import annotations

from tuning_tiny import TINY_MODEL, TINY_SPACE, TINY_TRAINING, tiny_bundle

from hilbert_pipeline.tuning.run import absolute_storage, run_tuning


def _params(tmp_path, name: str) -> tuple[dict, dict]:
    tuning = {"seed": 3, "study_name": name, "name_with_fingerprint": False,
              "storage": f"sqlite:///{tmp_path}/optuna.db", "n_trials": 4, "n_folds": 2,
              "n_startup_trials": 2, "heartbeat_interval": 1, "grace_period": 30,
              "progress": False, "search_space": TINY_SPACE}
    training = {"seed": 0, "device": "cpu", "progress": False,
                "model": dict(TINY_MODEL),
                "optim": {k: v for k, v in TINY_TRAINING.items() if k not in ("device",
                                                                              "progress")}}
    return tuning, training


def test_two_dask_workers_share_one_study(tmp_path, dask_client):
    sf, documents = tiny_bundle()
    tuning, training = _params(tmp_path, "on-cluster")
    out = run_tuning(sf, documents, tuning, training, client=dask_client)
    states = out.summary["trial_states"]
    assert sum(states.values()) == 4 and set(states) <= {"COMPLETE", "PRUNED"}
    assert sorted(out.summary["this_worker"]["completed"]
                  + out.summary["this_worker"]["pruned"]) == [0, 1, 2, 3]
    assert list(out.trials["number"]) == [0, 1, 2, 3]
    assert set(out.best_params) >= {"lr", "d", "n_experts"}


def test_relative_sqlite_urls_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_storage("sqlite:///data/x.db") == f"sqlite:///{tmp_path}/data/x.db"
    assert absolute_storage("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_storage("postgresql://u@h/db") == "postgresql://u@h/db"
