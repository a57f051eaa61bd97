"""``hilbert_pipeline.cluster``: the cluster setting, connecting, the Slurm job script, and
evaluation on a real 2-process LocalCluster equal to evaluation in-process."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from synthetic import synthetic_features

from hilbert_pipeline.cluster import ClusterError, ClusterSettings, cluster_client, slurm_cluster
from hilbert_pipeline.documents import build_document_set
from hilbert_pipeline.evaluation import evaluate as ev
from hilbert_pipeline.folds import make_folds

ROOT = Path(__file__).resolve().parents[1]


def test_settings_are_validated():
    assert ClusterSettings.from_params(None).in_process
    assert ClusterSettings.from_params({"address": "tcp://h:8786"}).address == "tcp://h:8786"
    with pytest.raises(ClusterError, match="unknown key"):
        ClusterSettings.from_params({"adress": "local"})
    with pytest.raises(ClusterError, match="not understood"):
        ClusterSettings.from_params({"address": "localhost"})
    with pytest.raises(ClusterError, match="n_workers"):
        ClusterSettings.from_params({"address": "local", "n_workers": 0})
    with pytest.raises(ClusterError, match="jobqueue_config"):
        ClusterSettings.from_params({"address": "slurm", "jobqueue_config": None})


def test_in_process_yields_no_client():
    with cluster_client({"address": None}) as client:
        assert client is None


def test_a_bad_scheduler_address_fails_fast_with_a_clear_message():
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as err:
        with cluster_client({"address": "tcp://127.0.0.1:9", "connect_timeout": 2}):
            pass
    assert time.monotonic() - t0 < 30
    msg = str(err.value)
    assert "tcp://127.0.0.1:9" in msg and "dask scheduler" in msg and "null" in msg


def test_the_shipped_slurm_config_makes_a_gpu_job_script():
    with slurm_cluster(ROOT / "conf/base/cluster_slurm.yaml") as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH --gres=gpu:1" in script  # one GPU per job ...
    assert "--resources GPU=1" in script  # ... and one worker per job, tagged with it
    assert "#SBATCH --cpus-per-task=8" in script and "--nthreads 8" in script
    assert "--nworkers" not in script  # processes: 1 -> a single worker process per job
    assert "source .venv/bin/activate" in script
    with pytest.raises(ClusterError, match="does not exist"):
        slurm_cluster(ROOT / "conf/base/no_such.yaml")


def _evaluate(client=None):
    sf, documents = synthetic_features([7, 6, 5], n_segments=(2, 4), audio_dim=6, text_dim=5,
                                       signal=1.5, seed=3)
    docs, _ = build_document_set(sf, documents)
    folds = make_folds(docs, 2, 1, 0)
    model = {"d": 8, "n_heads": 2, "pool_hops": 1, "n_experts": 2}
    optim = {"epochs": 2, "batch_size": 8, "min_epochs": 1, "progress": False, "device": "cpu",
             "num_threads": 1}
    methods = ["hilbert", "concat_logreg", "majority"]
    return ev.run_evaluation(docs, folds, methods, model, optim, seed=5, client=client)


def test_evaluation_on_the_cluster_equals_evaluation_in_process(dask_client):
    """Three runs on the cluster: which worker runs which fit changes between runs. Before every
    fit ran under ``evaluate.fit_context`` and oneDNN's switch was held per process
    (``cpu_kernels.network_numerics``), a worker could run two fits at once, and about half the
    runs had a fit with oneDNN back on that moved a fold's probabilities."""
    local = _evaluate()
    cols = [c for c in local.predictions if c.startswith("p_")]
    for _ in range(3):
        remote = _evaluate(dask_client)
        assert local.fold_metrics["macro_f1"].tolist() == remote.fold_metrics["macro_f1"].tolist()
        # bitwise: the same kernels on the same inputs (a fit on oneDNN's kernels differed by 6e-8
        # on this machine and by 0.0022 on another)
        np.testing.assert_array_equal(local.predictions[cols].to_numpy(),
                                      remote.predictions[cols].to_numpy())


def _nested_joblib_backend() -> tuple[str, str]:
    """In a task of joblib's Dask backend: the backend that a joblib call inside it (scikit-learn's
    grid search) would use, outside and inside ``fit_context``."""
    from joblib.parallel import get_active_backend

    outside = type(get_active_backend()[0]).__name__
    with ev.fit_context({}):
        inside = type(get_active_backend()[0]).__name__
    return outside, inside


def test_joblib_calls_inside_a_fit_stay_in_its_thread_on_a_dask_worker(dask_client):
    """A fit's own joblib calls must not go to the cluster: waiting for them, the fit's thread
    would leave the worker's pool and the worker would start a second fit beside it in the same
    process (random state and torch's switches shared: numbers that depend on the timing)."""
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="dask", n_jobs=-1):
        seen = Parallel(n_jobs=-1)(delayed(_nested_joblib_backend)() for _ in range(2))
    assert seen == [("DaskDistributedBackend", "SequentialBackend")] * 2


def _worker_kernels() -> tuple[str | None, str]:
    import os

    import torch

    return os.environ.get("ATEN_CPU_CAPABILITY"), torch.backends.cpu.get_cpu_capability()


def test_dask_workers_run_the_pinned_cpu_kernels(dask_client):
    """A worker process trains with the kernels the project pins (docs/reproducibility.md), so
    a fit on the cluster is the fit in-process, to the bit."""
    from hilbert_pipeline import cpu_kernels

    expected = cpu_kernels.pinned_values().get("ATEN_CPU_CAPABILITY")
    for env, capability in dask_client.run(_worker_kernels).values():
        assert env == expected
        if expected is not None:
            assert capability == expected.upper()
