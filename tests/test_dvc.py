"""``dvc repro`` runs the whole chain on a tiny demo corpus in a throw-away project copy; a second
repro does nothing; a changed parameter makes exactly the stages that read it out of date;
``dvc metrics show`` prints the evaluated methods."""

from __future__ import annotations

import json

import pytest
from dvc_helpers import METHODS, _edit, dvc, make_dvc_project, stale_stages


@pytest.mark.slow
def test_dvc_repro_chain_status_and_metrics(tmp_path, espeak):
    project = make_dvc_project(tmp_path / "project")
    dvc(project, "init", "--no-scm")
    dvc(project, "config", "core.analytics", "false")

    dvc(project, "repro", "demo_data", "segmentation", "embedding", "tuning", "training",
        "evaluation", "inference")
    assert (project / "dvc.lock").is_file()
    predictions = project / "data/07_model_output/predictions.csv"
    assert len(predictions.read_text().splitlines()) == 1 + 14  # header + every document
    for out in ("data/01_raw/sotu/manifest.csv", "data/04_feature/segment_features.pkl",
                "data/06_models/optuna.db", "data/06_models/best_params.json",
                "data/06_models/hilbert_model.pt", "data/08_reporting/metrics.json"):
        assert (project / out).exists(), out
    assert stale_stages(project) == set()

    # nothing changed: nothing runs
    again = dvc(project, "repro", "demo_data", "segmentation", "embedding", "tuning", "training",
                "evaluation", "inference")
    out = again.stdout + again.stderr
    assert "Running stage" not in out
    for stage in ("demo_data", "segmentation", "embedding", "tuning", "training", "evaluation",
                  "inference"):
        assert f"Stage '{stage}' didn't change, skipping" in out

    # the tuning database survives a forced re-run of its stage (persist: true) and resumes
    before = (project / "data/06_models/optuna.db").stat().st_size
    dvc(project, "repro", "--force", "--single-item", "tuning")
    summary = json.loads((project / "data/08_reporting/tuning_summary.json").read_text())
    assert sum(summary["trial_states"].values()) == 2  # resumed: the budget was already reached
    assert (project / "data/06_models/optuna.db").stat().st_size >= before

    # one training parameter that only training and evaluation read
    _edit(project / "conf/base/parameters_training.yml", "training",
          lambda p: p.update(use_tuned=True))
    assert stale_stages(project) == {"training", "evaluation"}
    # an inference parameter: inference alone
    _edit(project / "conf/base/parameters_inference.yml", "inference",
          lambda p: p.update(top_k=3))
    assert stale_stages(project) == {"training", "evaluation", "inference"}
    # one that tuning reads as well (every trial starts from training.optim)
    _edit(project / "conf/base/parameters_training.yml", "training",
          lambda p: p["optim"].update(weight_decay=0.05))
    assert stale_stages(project) == {"tuning", "training", "evaluation", "inference"}

    # the DVC metrics file is the short headline; `dvc metrics show` fits a 120-column terminal
    # (`dvc metrics diff` prints one row per key, narrower still; it needs Git, not used here)
    metrics = dvc(project, "metrics", "show").stdout
    headline = json.loads((project / "data/08_reporting/headline.json").read_text())
    assert list(headline) == ["hilbert_f1", "best", "best_f1", "diff", "ci_lo", "ci_hi",
                              "fit_seconds"]
    assert headline["best"] == "concat_logreg"  # the only baseline evaluated here
    assert "hilbert_f1" in metrics and "concat_logreg" in metrics, metrics
    assert max(len(line) for line in metrics.splitlines()) <= 120, metrics
    full = json.loads((project / "data/08_reporting/metrics.json").read_text())
    assert set(METHODS) <= set(full)  # every method stays in the full table
