"""``kedro run --pipelines demo_data`` on 3 tiny documents, then segmentation on its output."""

from __future__ import annotations

import csv
import json
import os

import pandas as pd
import pytest
from kedro_helpers import run_kedro


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch):
    """Wide logs (no wrapping of paths by rich) so messages can be searched."""
    monkeypatch.setenv("COLUMNS", "400")


def test_demo_data_builds_reuses_and_rebuilds(kedro_project, espeak):
    project = kedro_project
    (project / "src").mkdir(exist_ok=True)  # Kedro wants <project>/src; code comes from the install
    small = "demo_data.n_documents=3,demo_data.sentences_per_document=2,demo_data.progress=false"
    run_kedro(project, "run", "--pipelines", "demo_data", "--params", small)
    corpus = project / "data/01_raw/sotu"
    rows = list(csv.DictReader((corpus / "manifest.csv").open()))
    assert len(rows) == 3 and len({r["label"] for r in rows}) == 3
    # the corpus carries the demo's classes; the party stays in its own column
    assert {r["party"] for r in rows} == {"Republican", "Democratic", "Democratic-Republican"}
    assert {r["label"] for r in rows} == {"Republican", "Democratic", "other"}
    for r in rows:
        segs = json.loads((corpus / r["transcript"]).read_text())["segments"]
        assert len(segs) == 2 and all(s["end"] > s["start"] for s in segs)
        assert (corpus / r["audio"]).is_file()
    summary = json.loads((project / "data/08_reporting/demo_data_summary.json").read_text())
    assert summary["n_documents"] == 3 and summary["n_sentences"] == 6
    assert summary["total_audio_seconds"] > 3
    # the default corpus parameter points at the demo: segmentation runs on it as is
    # (3 documents of 3 labels: one each, so min_docs_per_label is lowered for this tiny build)
    run_kedro(project, "run", "--pipelines", "segmentation", "--params",
              "segmentation.min_docs_per_label=1,segmentation.progress=false")
    segments = pd.read_parquet(project / "data/03_primary/segments.parquet")
    assert segments["doc_id"].nunique() == 3 and len(segments) >= 3
    # same parameters: reused, nothing rewritten
    stamp = {p: os.stat(p).st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    run_kedro(project, "run", "--pipelines", "demo_data", "--params", small)
    assert {p: os.stat(p).st_mtime_ns for p in corpus.rglob("*") if p.is_file()} == stamp
    # another parameter: rebuilt (3 sentences per document now)
    run_kedro(project, "run", "--pipelines", "demo_data", "--params",
              small.replace("sentences_per_document=2", "sentences_per_document=3"))
    for r in csv.DictReader((corpus / "manifest.csv").open()):
        assert len(json.loads((corpus / r["transcript"]).read_text())["segments"]) == 3
    assert json.loads((project / "data/08_reporting/demo_data_summary.json").read_text())[
        "params_hash"] != summary["params_hash"]
