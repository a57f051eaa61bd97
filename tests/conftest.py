"""Shared test fixtures: a throw-away Kedro project copy and the espeak-ng binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kedro_helpers import make_project_copy, run_kedro  # noqa: F401  (re-exported for tests)

import hilbert_pipeline  # noqa: F401  (pins the CPU kernels before any test imports torch)


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


@pytest.fixture(scope="session")
def espeak() -> str:
    """Path of espeak-ng; `make test` installs it, so a missing binary is a set-up error."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is not installed: run `sudo apt-get install -y espeak-ng` "
                    "(make test does this when run as root)")
    return exe


@pytest.fixture(scope="session")
def dask_client():
    """A real Dask LocalCluster of 2 worker processes on loopback (shared by the cluster tests)."""
    from hilbert_pipeline.cluster import cluster_client

    with cluster_client({"address": "local", "n_workers": 2, "threads_per_worker": 1}) as client:
        yield client


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, espeak):
    """A throw-away project where ``kedro run`` (the default pipeline: segmentation → embedding
    → training → evaluation) ran once on the tiny 12-document real-speech corpus; shared by the
    end-to-end and notebook tests (one file, so that ``--dist loadfile`` runs them in one test
    process), which only add outputs to it.
    Returns ``(project, corpus, CompletedProcess of the run)``."""
    from tiny_topics import KEDRO_PARAMS, tiny_documents

    from hilbert_pipeline.demo import synthesize_corpus

    project = make_project_copy(tmp_path_factory.mktemp("trained") / "project")
    corpus = synthesize_corpus(project / "data" / "01_raw" / "tiny", tiny_documents(), seed=0)
    # the shell asks for other CPU kernels than the project pins: the run must not follow it
    # (test_end_to_end checks the capability metrics.json reports)
    proc = run_kedro(project, "run", "--params", f"corpus={corpus},{KEDRO_PARAMS}",
                     env={"ATEN_CPU_CAPABILITY": "default"})
    return project, corpus, proc
