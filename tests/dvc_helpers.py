"""A throw-away copy of the project as a DVC repository, shrunk to a 14-document corpus, and a
``dvc`` runner (tests/test_dvc.py, tests/test_experiments.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from kedro_helpers import make_project_copy

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))
METHODS = ["hilbert", "concat_logreg", "majority"]
TINY_SPACE = {
    "lambda_dual": {"low": 0.01, "high": 1.0},
    "lambda_cka": 0.0,
    "lambda_mi": 0.0,
    "n_experts": {"low": 1, "high": 2},
    "top_k": [None],
    "lr": {"low": 1e-3, "high": 1e-2},
    "dropout": 0.0,
    "d": [16],
}


def _edit(path: Path, key: str, update) -> None:
    data = yaml.safe_load(path.read_text())
    update(data[key])
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def make_dvc_project(dest: Path) -> Path:
    """Copy what `dvc repro` needs (pyproject, conf, src, dvc.yaml, .dvcignore) and shrink the
    parameters *in conf/base* -- the files DVC tracks -- to a 14-document corpus."""
    make_project_copy(dest)
    shutil.copytree(ROOT / "src", dest / "src", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(ROOT / name, dest / name)
    base = dest / "conf" / "base"
    _edit(base / "parameters_demo_data.yml", "demo_data", lambda p: p.update(
        n_documents=14, sentences_per_document=1, workers=2, progress=False))
    _edit(base / "parameters_segmentation.yml", "segmentation", lambda p: p.update(
        min_docs_per_label=1, max_segments=4, progress=False))
    _edit(base / "parameters_embedding.yml", "embedding", lambda p: p.update(
        progress=False, device="cpu", torch_threads=1))
    _edit(base / "parameters_tuning.yml", "tuning", lambda p: p.update(
        n_trials=2, n_folds=2, n_startup_trials=1, progress=False, search_space=TINY_SPACE,
        optim_overrides={"epochs": 2, "patience": 2}, heartbeat_interval=5, grace_period=20))

    def training(p):
        p.update(device="cpu", progress=False)
        # wide_path off: the wide path's inner-CV search is the default recipe's (tested end to
        # end in test_end_to_end.py); here it would only slow the stages DVC is tested with
        p["model"].update(d=16, n_heads=2, pool_hops=1, n_experts=2, expert_hidden=16,
                          wide_path=False)
        p["optim"].update(epochs=2, batch_size=4, min_epochs=1, patience=2)

    _edit(base / "parameters_training.yml", "training", training)
    _edit(base / "parameters_evaluation.yml", "evaluation", lambda p: p.update(
        n_splits=2, n_repeats=1, methods=METHODS, progress=False, n_jobs=1))
    _edit(base / "parameters_inference.yml", "inference", lambda p: p.update(progress=False))
    return dest


def dvc(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", KEDRO_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS="1", MPLBACKEND="Agg", COLUMNS="200",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([DVC, *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode})\n--- stdout\n"
                             f"{proc.stdout[-8000:]}\n--- stderr\n{proc.stderr[-8000:]}")
    return proc


def stale_stages(project: Path) -> set[str]:
    status = json.loads(dvc(project, "status", "--json").stdout or "{}")
    return set(status)
