"""The ``embedding`` Kedro pipeline run as a user would, in a throw-away project copy."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest


def run_kedro(*args, **kwargs):
    """``run_kedro`` of tests/conftest.py, loaded by path (``import conftest`` is ambiguous)."""
    name = "_hilbert_tests_root_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name].run_kedro(*args, **kwargs)


@pytest.mark.slow
def test_kedro_embedding_pipeline_writes_features_and_reuses_cache(kedro_project, make_segments):
    (kedro_project / "src").mkdir(exist_ok=True)  # Kedro wants it; the package is installed
    seg = make_segments(folder=kedro_project / "data" / "01_raw" / "audio")
    seg.loc[len(seg) - 1, "text"] = ""  # one segment without words
    seg.to_parquet(kedro_project / "data" / "03_primary" / "segments.parquet", index=False)

    run_kedro(kedro_project, "run", "--pipelines", "embedding",
              "--params", "embedding.progress=false")
    feats_path = kedro_project / "data" / "04_feature" / "segment_features.pkl"
    with open(feats_path, "rb") as fh:
        feats = pickle.load(fh)
    n = len(seg)
    assert feats["index"][["doc_id", "seg_idx"]].values.tolist() == \
        seg[["doc_id", "seg_idx"]].values.tolist()
    assert feats["audio"].shape == (n, 256) and feats["text"].shape == (n, 384)
    assert feats["audio_mask"].all() and feats["text_mask"].tolist() == [True] * (n - 1) + [False]
    assert feats["meta"]["audio_encoder"]["name"] == "resemblyzer"
    assert feats["meta"]["text_encoder"]["name"] == "minilm"
    summary_path = kedro_project / "data" / "08_reporting" / "embedding_summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["cache_misses"] == 2 * n - 1 and summary["text"]["missing"] == 1
    assert (kedro_project / "data" / "04_feature" / "cache" / "file_hashes.json").is_file()

    run_kedro(kedro_project, "run", "--pipelines", "embedding",
              "--params", "embedding.progress=false")
    summary = json.loads(summary_path.read_text())
    assert summary["cache_misses"] == 0 and summary["cache_hits"] == 2 * n - 1
    assert summary["audio"]["model_loaded"] is False and summary["text"]["model_loaded"] is False
    with open(feats_path, "rb") as fh:
        again = pickle.load(fh)
    np.testing.assert_array_equal(again["audio"], feats["audio"])
    np.testing.assert_array_equal(again["text"], feats["text"])


@pytest.mark.slow
def test_embedding_pipeline_on_a_local_cluster_equals_in_process(make_segments, tmp_path):
    """The same pipeline in memory with ``cluster.address: local`` (2 worker processes)."""
    from memory_runner import run_in_memory

    from hilbert_pipeline.pipelines.embedding import create_pipeline

    seg = make_segments(folder=tmp_path / "audio")
    runs = {}
    for name, cluster in (("in_process", {"address": None}),
                          ("cluster", {"address": "local", "n_workers": 2})):
        runs[name] = run_in_memory(create_pipeline(), inputs={"segments": seg}, params={
            "embedding": {"progress": False, "device": "cpu", "torch_threads": 1,
                          "cache_dir": str(tmp_path / f"cache_{name}")},
            "cluster": cluster})
    a, b = runs["in_process"]["segment_features"], runs["cluster"]["segment_features"]
    np.testing.assert_allclose(a["audio"], b["audio"], atol=1e-6)
    np.testing.assert_allclose(a["text"], b["text"], atol=1e-6)
    np.testing.assert_array_equal(a["text_mask"], b["text_mask"])
    assert runs["cluster"]["embedding_summary"]["cluster"]["workers"] == 2
    assert "cluster" not in runs["in_process"]["embedding_summary"]
