"""Tuning on a real 2-process Dask LocalCluster: one study worker per Dask worker, one SQLite
study, exactly the trial budget, and the same outputs as a study run in-process."""

from __future__ import annotations

from tuning_tiny import TINY_MODEL, TINY_SPACE, TINY_TRAINING, tiny_train_set

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


def test_two_dask_workers_share_one_study(tmp_path, dask_client, capsys):
    docs, report = tiny_train_set()
    tuning, training = _params(tmp_path, "on-cluster")
    out = run_tuning(docs, report, {**tuning, "progress": True}, training, client=dask_client)
    assert "optuna on-cluster (cluster)" in capsys.readouterr().err  # the driver's bar
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


def test_dask_storage_needs_no_database(tmp_path, dask_client):
    """``tuning.storage: dask``: the study lives on the Dask scheduler (optuna-integration's
    DaskStorage); two Dask workers share it, claim slots under a Dask lock, and end with exactly
    the trial budget."""
    docs, report = tiny_train_set()
    tuning, training = _params(tmp_path, "in-scheduler")
    tuning["storage"] = "dask"
    out = run_tuning(docs, report, tuning, training, client=dask_client)
    assert sum(out.summary["trial_states"].values()) == 4
    assert sorted(out.summary["this_worker"]["completed"]
                  + out.summary["this_worker"]["pruned"]) == [0, 1, 2, 3]
    assert out.summary["storage"].startswith("dask")
    assert not (tmp_path / "optuna.db").exists()  # no database file anywhere


def test_dask_storage_without_a_cluster_is_a_clear_error(tmp_path):
    import pytest

    from hilbert_pipeline.tuning.study import TuningConfigError

    docs, report = tiny_train_set()
    tuning, training = _params(tmp_path, "nowhere")
    tuning["storage"] = "dask"
    with pytest.raises(TuningConfigError, match="needs a cluster"):
        run_tuning(docs, report, tuning, training)


def test_a_trial_of_a_lost_dask_worker_is_failed_and_its_slot_freed(dask_client):
    """No heartbeats on the scheduler's storage: a RUNNING trial whose Dask worker is gone is
    stale (its slot would otherwise be held for ever)."""
    from optuna.trial import TrialState
    from optuna_integration import DaskStorage

    from hilbert_pipeline.tuning.study import fail_stale, open_study

    handle = open_study(DaskStorage(client=dask_client), "lost-worker", seed=1)
    assert handle.url == "dask://lost-worker"
    gone, alive = handle.study.ask(), handle.study.ask()
    gone.set_user_attr("dask_worker", "tcp://127.0.0.1:1")  # no such worker
    alive.set_user_attr("dask_worker", sorted(dask_client.scheduler_info()["workers"])[0])
    assert fail_stale(handle) == [gone.number]
    states = {t.number: t.state for t in handle.study.get_trials()}
    assert states == {gone.number: TrialState.FAIL, alive.number: TrialState.RUNNING}
