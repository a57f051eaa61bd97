"""notebooks/hilbert_results.ipynb runs without a cell error on the outputs of the default pipeline
(the ``trained_project`` fixture: a tiny real corpus, espeak-ng speech, the real default encoders,
small training settings)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "hilbert_results.ipynb"
METHODS = ["hilbert", "concat_logreg", "majority"]


@pytest.mark.slow
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
    for method in METHODS:
        assert method in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 2, "expected the confusion matrix and the PCA map"
    assert "model classes: ['defense', 'economy', 'science']" in text
