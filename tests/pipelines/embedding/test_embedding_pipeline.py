"""The ``embedding`` pipeline in memory (DataCatalog + SequentialRunner) on real espeak-ng speech
with the real default encoders: the features, the cache, and a LocalCluster run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from memory_runner import run_in_memory

from hilbert_pipeline.pipelines.embedding import create_pipeline


def _run(segments, cache_dir: Path, cluster: dict | None = None) -> dict:
    return run_in_memory(create_pipeline(), inputs={"segments": segments}, params={
        "embedding": {"progress": False, "device": "cpu", "torch_threads": 1,
                      "cache_dir": str(cache_dir)},
        "cluster": cluster or {"address": None}})


def test_embedding_pipeline_writes_features_and_reuses_cache(make_segments, tmp_path):
    seg = make_segments(folder=tmp_path / "audio")
    seg.loc[len(seg) - 1, "text"] = ""  # one segment without words
    cache = tmp_path / "cache"
    out = _run(seg, cache)
    feats, summary = out["segment_features"], out["embedding_summary"]
    n = len(seg)
    assert feats["index"][["doc_id", "seg_idx"]].values.tolist() == \
        seg[["doc_id", "seg_idx"]].values.tolist()
    assert feats["audio"].shape == (n, 256) and feats["text"].shape == (n, 384)
    assert feats["audio_mask"].all() and feats["text_mask"].tolist() == [True] * (n - 1) + [False]
    assert feats["meta"]["audio_encoder"]["name"] == "resemblyzer"
    assert feats["meta"]["text_encoder"]["name"] == "minilm"
    assert summary["cache_misses"] == 2 * n - 1 and summary["text"]["missing"] == 1
    assert (cache / "file_hashes.json").is_file()

    again = _run(seg, cache)
    summary = again["embedding_summary"]
    assert summary["cache_misses"] == 0 and summary["cache_hits"] == 2 * n - 1
    # nothing computed (that a fresh process then loads no model: test_embed_segments.py)
    assert summary["audio"]["computed"] == 0 and summary["text"]["computed"] == 0
    np.testing.assert_array_equal(again["segment_features"]["audio"], feats["audio"])
    np.testing.assert_array_equal(again["segment_features"]["text"], feats["text"])


@pytest.mark.slow
def test_embedding_pipeline_on_a_local_cluster_equals_in_process(make_segments, tmp_path):
    """The same pipeline in memory with ``cluster.address: local`` (2 worker processes)."""
    seg = make_segments(folder=tmp_path / "audio")
    runs = {}
    for name, cluster in (("in_process", {"address": None}),
                          ("cluster", {"address": "local", "n_workers": 2})):
        runs[name] = _run(seg, tmp_path / f"cache_{name}", cluster)
    a, b = runs["in_process"]["segment_features"], runs["cluster"]["segment_features"]
    np.testing.assert_allclose(a["audio"], b["audio"], atol=1e-6)
    np.testing.assert_allclose(a["text"], b["text"], atol=1e-6)
    np.testing.assert_array_equal(a["text_mask"], b["text_mask"])
    assert runs["cluster"]["embedding_summary"]["cluster"]["workers"] == 2
    assert "cluster" not in runs["in_process"]["embedding_summary"]
