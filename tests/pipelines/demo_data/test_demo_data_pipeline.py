"""The ``demo_data`` pipeline in memory on 3 tiny documents, then segmentation on its output."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from memory_runner import run_in_memory

from hilbert_pipeline.pipelines.demo_data import create_pipeline as demo_pipeline
from hilbert_pipeline.pipelines.segmentation import create_pipeline as segmentation_pipeline


def _demo(corpus: Path, sentences: int = 2) -> dict:
    return run_in_memory(demo_pipeline(), params={"demo_data": {
        "output_dir": str(corpus), "n_documents": 3, "sentences_per_document": sentences,
        "progress": False}})["demo_data_summary"]


def test_demo_data_builds_reuses_and_rebuilds(tmp_path, espeak):
    corpus = tmp_path / "sotu"
    summary = _demo(corpus)
    rows = list(csv.DictReader((corpus / "manifest.csv").open()))
    assert len(rows) == 3 and len({r["label"] for r in rows}) == 3
    # the corpus carries the demo's classes; the party stays in its own column
    assert {r["party"] for r in rows} == {"Republican", "Democratic", "Democratic-Republican"}
    assert {r["label"] for r in rows} == {"Republican", "Democratic", "other"}
    for r in rows:
        segs = json.loads((corpus / r["transcript"]).read_text())["segments"]
        assert len(segs) == 2 and all(s["end"] > s["start"] for s in segs)
        assert (corpus / r["audio"]).is_file()
    assert summary["n_documents"] == 3 and summary["n_sentences"] == 6
    assert summary["total_audio_seconds"] > 3
    # segmentation runs on it as is (3 documents of 3 labels: one each, so min_docs_per_label is
    # lowered for this tiny build)
    out = run_in_memory(segmentation_pipeline(), params={
        "corpus": str(corpus), "segmentation": {
            "min_docs_per_label": 1, "progress": False,
            "report_path": str(tmp_path / "corpus_validation.json")}})
    assert out["segments"]["doc_id"].nunique() == 3 and len(out["segments"]) >= 3
    # same parameters: reused, nothing rewritten
    stamp = {p: os.stat(p).st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    assert _demo(corpus)["params_hash"] == summary["params_hash"]
    assert {p: os.stat(p).st_mtime_ns for p in corpus.rglob("*") if p.is_file()} == stamp
    # another parameter: rebuilt (3 sentences per document now)
    rebuilt = _demo(corpus, sentences=3)
    for r in csv.DictReader((corpus / "manifest.csv").open()):
        assert len(json.loads((corpus / r["transcript"]).read_text())["segments"]) == 3
    assert rebuilt["params_hash"] != summary["params_hash"]


def test_the_default_corpus_parameter_is_the_demo_output():
    from memory_runner import base_parameters

    params = base_parameters()
    assert Path(params["corpus"]) == Path(params["demo_data"]["output_dir"])
