"""Sweeps as DVC experiments: a real two-experiment sweep in a temporary Git + DVC repository of
the project (14-document corpus), collected by ``kedro run --pipelines experiments``; a misspelt
``-S`` key fails without touching the parameter files; the shipped parameter files survive
``-S`` (no interpolation)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dvc_helpers import DVC, dvc, make_dvc_project
from kedro_helpers import run_kedro

from hilbert_pipeline.evaluation.experiments import experiments_markdown, experiments_table

ROOT = Path(__file__).resolve().parents[1]
TRAINING = "conf/base/parameters_training.yml"


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def test_shipped_parameter_files_have_no_interpolation():
    """`dvc exp run -S` rewrites a parameter file through a YAML dump: `${...}` would be lost."""
    for f in sorted((ROOT / "conf" / "base").glob("parameters*.yml")):
        assert "${" not in f.read_text(), f"{f.name} uses interpolation; -S would destroy it"


@pytest.mark.slow
def test_two_experiment_sweep_ends_in_one_table(tmp_path, espeak):
    project = make_dvc_project(tmp_path / "project")
    (project / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    for d in ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
              "06_models", "07_model_output", "08_reporting"):
        (project / "data" / d).mkdir(parents=True, exist_ok=True)
        (project / "data" / d / ".gitkeep").touch()
    _git(project, "init", "-q")
    _git(project, "config", "user.email", "test@example.org")
    _git(project, "config", "user.name", "test")
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "tiny project")

    # a misspelt key fails and leaves every parameter file as it was
    before = {f.name: f.read_bytes() for f in (project / "conf/base").glob("*.yml")}
    bad = subprocess.run([DVC, "exp", "run", "-S",
                          f"{TRAINING}:training.model.lambda_duall=0.5", "evaluation"],
                         cwd=project, capture_output=True, text=True)
    assert bad.returncode != 0 and "lambda_duall" in bad.stdout + bad.stderr
    assert {f.name: f.read_bytes() for f in (project / "conf/base").glob("*.yml")} == before

    for lam in ("0.05", "0.3"):
        dvc(project, "exp", "run", "-n", f"dual-{lam}", "-S",
            f"{TRAINING}:training.model.lambda_dual={lam}", "evaluation")
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    names = {e["name"]: e["revs"][0]["data"] for b in shown for e in (b.get("experiments") or [])}
    assert set(names) == {"dual-0.05", "dual-0.3"}
    for name, data in names.items():
        params = data["params"][TRAINING]["data"]["training"]["model"]
        assert params["lambda_dual"] == float(name.split("-")[1])
        assert data["metrics"]["data/08_reporting/headline.json"]["data"]["hilbert_f1"] > 0

    run_kedro(project, "run", "--pipelines", "experiments")
    table = pd.read_csv(project / "data/08_reporting/experiments.csv")
    md = (project / "data/08_reporting/experiments.md").read_text()
    exps = table[table["kind"] == "experiment"].set_index("experiment")
    assert set(exps.index) == {"dual-0.05", "dual-0.3"}
    col = "training.model.lambda_dual"
    assert sorted(exps[col]) == [0.05, 0.3]
    assert (exps["status"] == "done").all() and exps["hilbert_f1"].notna().all()
    assert exps["network_f1"].notna().all() and exps["fit_seconds"].gt(0).all()
    assert table["hilbert_f1"].dropna().is_monotonic_decreasing
    assert table["top"].sum() == 1 and bool(table.loc[0, "top"])
    assert "| ★ |" in md and "dual-0.05" in md and "dual-0.3" in md and "lambda_dual" in md


def test_table_from_dvc_json_marks_the_best_and_keeps_unfinished_runs():
    def run(rev, lam, f1=None, state=None, name=None):
        data = {"rev": rev, "timestamp": "2026-12-01T10:00:00",
                "params": {"conf/base/parameters_training.yml": {"data": {"training": {
                    "model": {"lambda_dual": lam, "d": 64}}}}},
                "metrics": {} if f1 is None else {"data/08_reporting/headline.json": {"data": {
                    "hilbert_f1": f1, "best": "text_logreg", "best_f1": 0.5, "diff": f1 - 0.5,
                    "ci_lo": -0.1, "ci_hi": 0.2, "fit_seconds": 12.0}}}}
        return {"revs": [{"rev": rev, "name": name, "data": data}], "name": name,
                "executor": None if state is None else {"state": state}}
    shown = [{"rev": "workspace", "name": None, "data": run("workspace", 0.1, 0.52)["revs"][0][
        "data"], "experiments": None},
             {"rev": "a" * 40, "name": "main", "data": run("a" * 40, 0.1, 0.52)["revs"][0]["data"],
              "experiments": [run("b" * 40, 0.5, 0.61, name="hi"),
                              run("c" * 40, 0.01, 0.47, name="lo"),
                              run("d" * 40, 0.9, None, "queued", name="later")]}]
    table = experiments_table(shown)
    assert list(table["experiment"]) == ["hi", "workspace", "main", "lo", "later"]
    assert list(table["top"]) == [True, False, False, False, False]
    assert table.attrs["changed_params"] == ["training.model.lambda_dual"]
    assert table.set_index("experiment").loc["later", "status"] == "queued"
    assert (table["network_f1"].dropna() == table["hilbert_f1"].dropna()).all()
    md = experiments_markdown(table)
    assert md.splitlines()[6].startswith("| ★ | hi (bbbbbbb) | 0.5 | 0.610 | 0.610 | "
                                         "text_logreg 0.500 | +0.110 [-0.100, +0.200] | 12 |")


def test_parameters_file_is_plain_yaml_dvc_can_rewrite():
    """The experiments block itself: plain values only."""
    data = yaml.safe_load((ROOT / "conf/base/parameters_experiments.yml").read_text())
    assert data == {"experiments": {"repo": ".",
                                    "metrics_file": "data/08_reporting/headline.json"}}
