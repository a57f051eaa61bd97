"""The Optuna study: real HILBERT trials on tiny data, resumption after SIGKILL, and two workers
sharing one study on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from postgres import PostgresUnavailable, start_postgres
from synthetic import synthetic_features
from tuning_tiny import TINY_MODEL, TINY_SPACE, TINY_TRAINING, tiny_train_docs

from hilbert_pipeline.documents import build_document_set
from hilbert_pipeline.tuning import (
    SearchSpace,
    TuningConfigError,
    TuningDataError,
    best_params,
    make_objective,
    open_study,
    plot_importance_html,
    run_worker,
    trials_table,
    tuning_documents,
)

WORKER = Path(__file__).resolve().parent / "tuning_worker.py"


@pytest.fixture
def postgres_server():
    """A private PostgreSQL cluster (initdb + pg_ctl) on a free loopback port, stopped after."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _study(url: str, name: str, seed: int = 7):
    return open_study(url, name, seed=seed, n_startup_trials=3, pruner_startup_trials=2,
                      pruner_warmup_steps=2, heartbeat_interval=1, grace_period=3)


def _objective(seed: int = 7, docs=None):
    return make_objective(docs if docs is not None else tiny_train_docs(),
                          SearchSpace.from_dict(TINY_SPACE), TINY_MODEL, TINY_TRAINING,
                          n_folds=3, seed=seed)


def test_small_study_outputs_and_seed_reproducibility(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    h = _study(url, "tiny")
    res = run_worker(h, _objective(), n_trials=4, progress=False)
    assert res.stop_reason == "n_trials reached"
    trials = h.study.get_trials()
    assert len(trials) == 4 and {t.state for t in trials} <= {TrialState.COMPLETE,
                                                             TrialState.PRUNED}
    best = best_params(h.study, SearchSpace.from_dict(TINY_SPACE))
    assert set(best["model"]) == {"lambda_dual", "lambda_cka", "lambda_mi", "n_experts", "top_k",
                                  "dropout", "d"}
    assert set(best["training"]) == {"lr"}
    assert 0.0 <= best["best_value"] <= 1.0 and len(best["fold_macro_f1"]) == 3
    json.dumps(best)  # JSON-serialisable as written to best_params.json
    table = trials_table(h.study)
    assert list(table["number"]) == [0, 1, 2, 3] and "params_lr" in table.columns

    # the same seed in a fresh study draws the same parameters and scores the same
    h2 = _study(f"sqlite:///{tmp_path}/again.db", "tiny")
    run_worker(h2, _objective(), n_trials=2, progress=False)
    for a, b in zip(trials[:2], h2.study.get_trials(), strict=True):
        assert a.params == b.params
        assert a.value == pytest.approx(b.value)

    # resuming with a larger budget continues the same study
    h3 = _study(url, "tiny")
    res3 = run_worker(h3, _objective(), n_trials=5, progress=False)
    assert len(res3.completed) + len(res3.pruned) == 1
    assert [t.number for t in h3.study.get_trials()] == [0, 1, 2, 3, 4]
    assert optuna.get_all_study_names(url) == ["tiny"]


def test_importance_page_explains_when_too_few_trials(tmp_path):
    h = _study(f"sqlite:///{tmp_path}/optuna.db", "one")
    run_worker(h, _objective(), n_trials=1, progress=False)
    page = plot_importance_html(h.study)
    assert "needs at least 2 complete trials" in page and "has 1" in page


def test_pruning_stops_bad_trials(tmp_path):
    """A trial whose learning rate is far too small is pruned against two good ones (the deep
    model alone: with the wide path, an untrained model is already the logistic regression)."""
    space = {**TINY_SPACE, "lr": {"low": 1e-9, "high": 1e-2}, "d": 16, "n_experts": 2,
             "top_k": None, "lambda_dual": 0.1, "lambda_cka": 0.0, "lambda_mi": 0.0,
             "dropout": 0.0}
    training = {**TINY_TRAINING, "epochs": 6, "patience": 6}
    h = open_study(f"sqlite:///{tmp_path}/p.db", "prune", seed=1, n_startup_trials=1,
                   pruner_startup_trials=2, pruner_warmup_steps=1, heartbeat_interval=1)
    for lr in (3e-3, 5e-3, 1e-9):
        h.study.enqueue_trial({"lr": lr})
    obj = make_objective(tiny_train_docs(), SearchSpace.from_dict(space),
                         TINY_MODEL, training, n_folds=3, seed=1)
    res = run_worker(h, obj, n_trials=3, progress=False)
    assert res.completed == [0, 1] and res.pruned == [2]
    assert h.study.trials[2].params["lr"] == 1e-9
    assert h.study.trials[2].user_attrs["pruned_at"]["fold"] == 0


def test_a_study_that_cannot_change_the_prediction_says_so(caplog):
    """A base model that predicts with its linear member alone (``wide_combine: wide``) trains
    no network, so the searched values cannot move a trial's score: the study says so; the
    default (a mixture, the network trained in every fold) is silent."""
    import logging

    wide = {**TINY_MODEL, "wide_path": True}
    space = SearchSpace.from_dict(TINY_SPACE)
    with caplog.at_level(logging.WARNING, logger="hilbert_pipeline.tuning.objective"):
        make_objective(tiny_train_docs(), space, {**wide, "wide_combine": "wide"},
                       TINY_TRAINING, n_folds=3, seed=7)
    assert "trials will score alike" in caplog.text
    assert "wide_combine: mixture" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hilbert_pipeline.tuning.objective"):
        make_objective(tiny_train_docs(), space, wide, TINY_TRAINING, n_folds=3, seed=7)
    assert "trials will score alike" not in caplog.text


def test_tuning_never_sees_test_documents():
    sf, documents = synthetic_features([8, 7, 6], n_segments=(3, 4), audio_dim=8, text_dim=6,
                                       split_test_fraction=0.25)
    test_ids = set(documents.loc[documents["split"] == "test", "doc_id"])
    train_docs, _ = build_document_set(sf, documents, only_split="train")
    assert not test_ids & set(tuning_documents(train_docs).doc_ids)
    all_docs, _ = build_document_set(sf, documents)
    with pytest.raises(TuningDataError, match="split != 'train'"):
        _objective(docs=all_docs)


def test_bad_settings_are_errors(tmp_path):
    with pytest.raises(TuningConfigError, match="SQLAlchemy URL"):
        open_study("optuna.db", "x", seed=1)
    h = _study(f"sqlite:///{tmp_path}/x.db", "x")
    with pytest.raises(TuningConfigError, match="n_trials"):
        run_worker(h, _objective(), n_trials=0)
    with pytest.raises(TuningDataError, match="not divisible by the model's n_heads=3"):
        make_objective(tiny_train_docs(), SearchSpace.from_dict(TINY_SPACE),
                       {**TINY_MODEL, "n_heads": 3}, TINY_TRAINING, n_folds=3, seed=1)


def test_resuming_with_another_objective_is_an_error(tmp_path):
    url = f"sqlite:///{tmp_path}/f.db"
    h = open_study(url, "fp", seed=1, fingerprint="aaaa")
    assert h.study.user_attrs["fingerprint"] == "aaaa"
    open_study(url, "fp", seed=1, fingerprint="aaaa")  # same objective: resumes
    with pytest.raises(TuningConfigError, match="aaaa != bbbb.*another tuning.study_name"):
        open_study(url, "fp", seed=1, fingerprint="bbbb")


def _worker_cmd(url: str, study: str, n_trials: int, *extra: str) -> list[str]:
    return [sys.executable, str(WORKER), "--storage", url, "--study", study,
            "--n-trials", str(n_trials), *extra]


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _trial_states(db: Path) -> list[str]:
    """Trial states read straight from the SQLite file, read-only.

    Not through Optuna: opening an Optuna storage creates its tables, which would race with the
    worker creating them.
    """
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in con.execute("SELECT state FROM trials")]
        finally:
            con.close()
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return []


def test_sigkilled_worker_resumes_the_same_study(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    n_trials = 5
    # the worker holds trial 2 open once it starts (RUNNING, heartbeats going, trials 0 and 1
    # finished) and says so; only then is it killed. Killing on a poll of the database instead
    # raced with the worker: the polled RUNNING trial could finish before the signal arrived.
    held = tmp_path / "held"
    proc = subprocess.Popen(_worker_cmd(url, "resume", n_trials, "--epochs", "6",
                                        "--hold-trial", "2", "--held", str(held)), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    killed = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if held.exists():
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        _, stderr = proc.communicate()
    assert killed, f"the worker finished or failed before it could be killed:\n{stderr[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    # nothing writes to the database after the kill: this is the state the worker left
    study = optuna.load_study(study_name="resume", storage=url)
    snapshot = study.get_trials()
    zombies = [t.number for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert zombies == [2], "the killed worker's trial should still be RUNNING"
    before = {t.number: (t.state, t.value, t.params) for t in snapshot
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert sorted(before) == [0, 1]

    out = subprocess.run(_worker_cmd(url, "resume", n_trials), env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert optuna.get_all_study_names(url) == ["resume"]
    after = optuna.load_study(study_name="resume", storage=url).get_trials()
    by_number = {t.number: t for t in after}
    for n, (state, value, params) in before.items():  # nothing finished before the kill is lost
        assert (by_number[n].state, by_number[n].value, by_number[n].params) == \
            (state, value, params)
    for z in zombies:  # the dead worker's trial is failed, not left RUNNING or counted
        assert by_number[z].state == TrialState.FAIL
    counted = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == n_trials
    assert not [t for t in after if t.state == TrialState.RUNNING]
    # numbering continued after the killed run's trials
    assert sorted(by_number) == list(range(len(after)))
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert min(new["completed"] + new["pruned"]) > max(t.number for t in snapshot)
    assert len(new["completed"]) + len(new["pruned"]) == n_trials - len(before)


def test_two_workers_share_one_postgres_study(tmp_path, postgres_server):
    url = postgres_server.create_database("optuna")
    n_trials = 4
    go = tmp_path / "go"
    procs, ready = [], []
    for i in range(2):
        ready.append(tmp_path / f"ready{i}")
        procs.append(subprocess.Popen(
            # a grace period far above any scheduling delay, so that on a loaded machine a
            # live trial whose heartbeat is late is never failed as stale by the other worker
            # (no worker dies here; dead workers are the test above)
            _worker_cmd(url, "shared", n_trials, "--ready", str(ready[-1]), "--go", str(go),
                        "--grace-period", "120"),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 90
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "workers did not open the study"
            assert all(p.poll() is None for p in procs), procs[0].stderr
            time.sleep(0.1)
        go.touch()
        outs = [p.communicate(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outs]
    mine = [set(r["completed"]) | set(r["pruned"]) for r in results]
    assert all(mine), f"each worker should run trials: {results}"
    assert not mine[0] & mine[1]  # no trial run twice
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert optuna.get_all_study_names(url) == ["shared"]
    assert len(trials) == n_trials  # exactly the budget: nothing lost, nothing extra
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert mine[0] | mine[1] == {t.number for t in trials} == set(range(n_trials))


def test_the_shipped_tuning_parameters_state_the_code_defaults():
    """One set of defaults: the study's keyword defaults, the parameter parser's and
    conf/base/parameters_tuning.yml agree (a user reading the file sees what omitting a key
    does)."""
    import yaml

    from hilbert_pipeline.tuning import study
    from hilbert_pipeline.tuning.run import parse_tuning_params

    conf = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf/base/"
                           "parameters_tuning.yml").read_text())["tuning"]
    assert conf["n_startup_trials"] == study.N_STARTUP_TRIALS
    assert conf["pruner"] == {"startup_trials": study.PRUNER_STARTUP_TRIALS,
                              "warmup_steps": study.PRUNER_WARMUP_STEPS}
    assert conf["heartbeat_interval"] == study.HEARTBEAT_INTERVAL
    minimal = parse_tuning_params({"seed": 1, "n_trials": 2,
                                   "search_space": conf["search_space"]})
    full = parse_tuning_params(conf)
    for name in ("n_startup_trials", "pruner_startup_trials", "pruner_warmup_steps",
                 "heartbeat_interval", "n_folds", "study_name"):
        assert getattr(minimal, name) == getattr(full, name), name
