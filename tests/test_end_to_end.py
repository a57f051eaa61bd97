"""The default pipeline (segmentation → embedding → training → evaluation) end to end, then
inference and notebooks/hilbert_results.ipynb on its outputs.

A tiny real corpus (the ``trained_project`` fixture): 12 documents in 3 classes, synthesised with
espeak-ng by ``hilbert_pipeline.demo.synthesize_corpus`` and encoded by the real default encoders
(resemblyzer audio, MiniLM text), one `kedro run` shared by the tests of this file. Small
training settings keep it quick.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from kedro_helpers import run_kedro
from nbclient import NotebookClient
from tiny_topics import KEDRO_PARAMS as PARAMS
from tiny_topics import tiny_documents

from hilbert_pipeline import cpu_kernels

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "hilbert_results.ipynb"
REPORTS = ["metrics.json", "comparison.md", "fold_metrics.csv", "per_class_metrics.csv",
           "confusion_hilbert.png", "confusion_best_baseline.png", "gate_usage.csv",
           "mi_estimates.json", "evaluation_labels.json", "training_history.csv",
           "training_curves.png", "training_summary.json"]


def test_default_pipeline_end_to_end(trained_project):
    kedro_project, corpus, proc = trained_project
    reports = kedro_project / "data" / "08_reporting"
    for name in REPORTS:
        assert (reports / name).is_file(), f"{name} missing; stderr:\n{proc.stderr[-3000:]}"
    assert (kedro_project / "data" / "06_models" / "hilbert_model.pt").is_file()
    assert (kedro_project / "data" / "05_model_input" / "folds.csv").is_file()

    metrics = json.loads((reports / "metrics.json").read_text())
    methods = ["hilbert", "text_only", "audio_only", "concat_logreg", "text_logreg",
               "audio_logreg", "direct", "no_dual", "no_cka", "no_mi", "mlp_head", "no_wide",
               "with_wide",
               "no_members", "no_distill", "no_fusion", "no_segment_head", "random_init",
               "bilinear_logreg", "segment_mil", "majority", "stratified"]
    assert list(metrics) == methods + ["paired", "platform"]
    # the kedro CLI pinned the CPU kernels before torch loaded, over the shell's `default`
    platform = metrics["platform"]
    assert platform["kernels"] == "portable"
    expected = cpu_kernels.pinned_values().get("ATEN_CPU_CAPABILITY")
    if expected is not None:
        assert platform["cpu_capability"] == expected.upper()
        assert platform["pinned"] == cpu_kernels.pinned_values()
    paired = metrics["paired"]
    assert paired["reference"] == "hilbert" and list(paired["methods"]) == methods[1:]
    for p in paired["methods"].values():
        assert p["wins"] + p["ties"] + p["losses"] == p["n_folds"] == 3
    assert paired["verdict"]["best_alternative"] in {"text_only", "audio_only", "concat_logreg",
                                                     "text_logreg", "audio_logreg", "direct",
                                                     "bilinear_logreg", "segment_mil"}
    for m in methods:
        assert set(metrics[m]) == {"macro_f1", "balanced_accuracy", "auc_ovr_macro",
                                   "weighted_f1"}
        for v in metrics[m].values():
            assert set(v) == {"mean", "std", "ci95"} and len(v["ci95"]) == 2
            assert 0.0 <= v["mean"] <= 1.0
    assert metrics["majority"]["balanced_accuracy"]["mean"] == pytest.approx(1 / 3)

    folds = pd.read_csv(kedro_project / "data" / "05_model_input" / "folds.csv")
    assert sorted(folds.loc[folds.role == "test", "doc_id"]) == sorted(
        d["doc_id"] for d in tiny_documents())
    fm = pd.read_csv(reports / "fold_metrics.csv")
    assert len(fm) == 3 * len(methods)
    table = (reports / "comparison.md").read_text()
    assert "| hilbert | proposed |" in table
    assert "## Paired comparison" in table and paired["verdict"]["sentence"] in table
    assert "method comparison" in proc.stderr + proc.stdout  # logged at the end

    from hilbert_pipeline.training.checkpoint import load_checkpoint

    ck = load_checkpoint(kedro_project / "data" / "06_models" / "hilbert_model.pt")
    assert ck.label_names == ["defense", "economy", "science"]
    assert ck.config.audio_dim == 256 and ck.config.text_dim == 384

    # apply the trained model as a user would: `kedro run --pipelines inference`
    run_kedro(kedro_project, "run", "--pipelines", "inference", "--params",
              f"corpus={corpus},{PARAMS},inference.progress=false")
    out = kedro_project / "data" / "07_model_output"
    predictions = pd.read_csv(out / "predictions.csv")
    assert sorted(predictions["doc_id"]) == sorted(d["doc_id"] for d in tiny_documents())
    assert predictions["in_training"].all()  # the training corpus itself: not held-out
    assert (out / "explanations.csv").is_file() and (out / "inference_report.html").is_file()
    assert json.loads((out / "inference_metrics.json").read_text())["held_out"] is False
    # a parameter the model was not trained with is refused with one clear message
    proc = run_kedro(kedro_project, "run", "--pipelines", "inference", "--params",
                     f"corpus={corpus},{PARAMS},segmentation.max_segments=3", check=False)
    assert proc.returncode != 0
    assert "segmentation.max_segments: the model was trained with 1024" in (proc.stdout
                                                                           + proc.stderr)

    # same seed, same folds and features -> identical metrics
    first = (reports / "metrics.json").read_text()
    run_kedro(kedro_project, "run", "--pipelines", "evaluation", "--params",
                 f"corpus={corpus},{PARAMS}")
    assert (reports / "metrics.json").read_text() == first


def test_results_notebook_runs_on_pipeline_outputs(trained_project):
    kedro_project = trained_project[0]
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    old = os.environ.get("HILBERT_PROJECT_PATH")
    os.environ["HILBERT_PROJECT_PATH"] = str(kedro_project)
    try:
        # the kernel inherits this environment; errors in any cell raise CellExecutionError
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("HILBERT_PROJECT_PATH", None)
        else:
            os.environ["HILBERT_PROJECT_PATH"] = old

    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for method in ("hilbert", "concat_logreg", "majority"):
        assert method in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 2, "expected the confusion matrix and the PCA map"
    assert "model classes: ['defense', 'economy', 'science']" in text
    # its form, in words
    assert "the model's prediction is a weighted average of the trained network" in text
