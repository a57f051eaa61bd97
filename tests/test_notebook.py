"""notebooks/hilbert_results.ipynb runs without a cell error on the outputs of the default pipeline
(a tiny real corpus: espeak-ng speech, the real default encoders, small training settings)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import yaml
from kedro_helpers import run_kedro
from nbclient import NotebookClient

from hilbert_pipeline.demo import synthesize_corpus

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "hilbert_results.ipynb"
METHODS = ["hilbert", "concat_logreg", "majority"]
TOPICS = {
    "economy": ["Our markets and factories have grown this year.",
                "Taxes on working families must come down."],
    "defense": ["Our army and navy stand ready.", "We will defend our allies abroad."],
    "science": ["New laboratories will study the stars.", "Medicine has cured old diseases."],
}


def _tiny_params(project: Path, corpus: Path) -> None:
    """Small settings as conf/local/parameters_tiny.yml (whole blocks: Kedro replaces top-level
    keys of base with those of the local environment)."""
    base = project / "conf" / "base"

    def block(name: str) -> dict:
        return yaml.safe_load((base / f"parameters_{name}.yml").read_text())[name]

    seg, emb, tr, ev = block("segmentation"), block("embedding"), block("training"), \
        block("evaluation")
    seg.update(progress=False, max_segments=4)
    emb.update(progress=False, device="cpu")
    tr.update(progress=False, device="cpu")
    tr["model"].update(d=16, n_heads=2, n_experts=2, pool_hops=1)
    tr["optim"].update(epochs=2, batch_size=4, min_epochs=1)
    ev.update(n_splits=2, n_repeats=1, methods=METHODS, progress=False, n_jobs=1)
    (project / "conf" / "local" / "parameters_tiny.yml").write_text(yaml.safe_dump(
        {"corpus": str(corpus), "segmentation": seg, "embedding": emb, "training": tr,
         "evaluation": ev}))


@pytest.mark.slow
def test_results_notebook_runs_on_pipeline_outputs(kedro_project: Path, espeak: str):
    docs = [{"doc_id": f"{label}_{j}", "label": label, "sentences": [s]}
            for label, sentences in TOPICS.items() for j, s in enumerate(sentences * 2)]
    corpus = synthesize_corpus(kedro_project / "data" / "01_raw" / "tiny", docs, seed=0)
    _tiny_params(kedro_project, corpus)
    run_kedro(kedro_project, "run")

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
    for method in METHODS:
        assert method in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 2, "expected the confusion matrix and the PCA map"
    assert "model classes: ['defense', 'economy', 'science']" in text
