"""Embedding on a real 2-process Dask LocalCluster (espeak-ng speech, the real default encoders):
the same features as in-process, work split by document, and a worker killed mid-run leaves a
cache from which the next run computes only what is missing, with nothing duplicated."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hilbert_pipeline.corpus import SegmentationConfig, load_corpus, segment_corpus
from hilbert_pipeline.demo import synthesize_corpus
from hilbert_pipeline.encoders import embed_segments
from hilbert_pipeline.encoders.distributed import document_tasks, embed_segments_on_cluster
from hilbert_pipeline.encoders.registry import shared_encoder

pytestmark = pytest.mark.slow

WORDS = ["river", "mountain", "harvest", "engine", "letter", "garden", "market", "winter",
         "harbor", "library", "signal", "forest"]
AUDIO = ("resemblyzer", {"device": "cpu"})
TEXT = ("minilm", {"device": "cpu"})


@pytest.fixture(scope="module")
def segments(tmp_path_factory, espeak) -> pd.DataFrame:
    # every sentence unique: no two segments share a cache key
    docs = [{"doc_id": f"doc{i:02d}", "label": "ab"[i % 2],
             "sentences": [f"The {WORDS[i]} number {i} opens the day.",
                           f"Then {WORDS[(i + 5) % 12]} {i} closes it."]} for i in range(12)]
    corpus = synthesize_corpus(tmp_path_factory.mktemp("dist") / "c", docs, seed=0)
    validated = load_corpus(corpus)
    segs, _, _ = segment_corpus(validated.documents, SegmentationConfig(min_duration=None))
    return segs


def _in_process(segments: pd.DataFrame, cache: Path):
    return embed_segments(segments, shared_encoder(*AUDIO[:1], **AUDIO[1]),
                          shared_encoder(*TEXT[:1], **TEXT[1]), cache, progress=False)


def _chunk_keys(cache: Path) -> Counter:
    keys: Counter = Counter()
    for chunk in cache.glob("*/chunk-*.npz"):
        with np.load(chunk) as z:
            keys.update(k.decode() for k in z["keys"])
            keys.update(k.decode() for k in z["missing_keys"])
    return keys


def test_tasks_keep_documents_whole_and_balanced(segments):
    parts = document_tasks(segments, 5)
    assert len(parts) == 5
    assert sum(len(p) for p in parts) == len(segments)
    owners = {}
    for k, p in enumerate(parts):
        for d in p["doc_id"].unique():
            assert owners.setdefault(d, k) == k  # a document lies in one task only
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= segments.groupby("doc_id").size().max()
    assert len(document_tasks(segments, 100)) == segments["doc_id"].nunique()


def test_cluster_features_equal_in_process_features(segments, dask_client, tmp_path):
    local, _ = _in_process(segments, tmp_path / "local")
    remote, summary = embed_segments_on_cluster(dask_client, segments, AUDIO, TEXT,
                                                tmp_path / "remote", progress=False)
    assert summary["cluster"]["workers"] == 2 and summary["cluster"]["tasks"] > 2
    assert summary["cache_misses"] == 2 * len(segments)  # every vector computed on workers
    pd.testing.assert_frame_equal(local["index"], remote["index"])
    for key in ("audio_mask", "text_mask"):
        np.testing.assert_array_equal(local[key], remote[key])
    np.testing.assert_allclose(local["audio"], remote["audio"], atol=1e-6)
    np.testing.assert_allclose(local["text"], remote["text"], atol=1e-6)
    assert local["meta"] == remote["meta"]
    # a second run computes nothing
    _, again = embed_segments_on_cluster(dask_client, segments, AUDIO, TEXT, tmp_path / "remote",
                                         progress=False)
    assert again["cache_misses"] == 0 and again["cache_hits"] == 2 * len(segments)


def test_a_worker_killed_mid_run_leaves_a_resumable_cache(segments, dask_client, tmp_path):
    cache = tmp_path / "cache"
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = embed_segments_on_cluster(dask_client, segments, AUDIO, TEXT,
                                                          cache, progress=False,
                                                          tasks_per_worker=6)
        except Exception as exc:  # noqa: BLE001 - the run may fail with the worker: both fine
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not list(cache.glob("*/chunk-*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = sorted(dask_client.scheduler_info()["workers"])[0]
    pid = dask_client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the worker process dies mid-task, without any clean-up
    thread.join(timeout=300)
    assert not thread.is_alive()
    written = sum(_chunk_keys(cache).values())
    assert written > 0  # the finished batches survived the lost worker

    # the next run (here in-process) computes only what is still missing
    features, summary = _in_process(segments, cache)
    assert summary["cache_misses"] == 2 * len(segments) - summary["cache_hits"]
    assert summary["cache_hits"] >= min(written, 2 * len(segments))
    keys = _chunk_keys(cache)
    assert len(keys) == 2 * len(segments)  # nothing lost: every segment, both modalities
    assert max(keys.values()) == 1, "a key stored twice"  # nothing duplicated
    reference, _ = _in_process(segments, tmp_path / "reference")
    np.testing.assert_allclose(features["audio"], reference["audio"], atol=1e-6)
    np.testing.assert_allclose(features["text"], reference["text"], atol=1e-6)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_embedding_through_an_fsspec_url_cache(segments, tmp_path):
    """A cache behind an fsspec URL (memory:// here: the code path of s3:// or gs://) gives the
    features of a local cache, and a second run computes nothing."""
    import fsspec

    url = f"memory://hilbert-embed-{os.getpid()}/cache"
    try:
        remote, summary = _in_process(segments, url)
        assert summary["cache_misses"] == 2 * len(segments)
        local, _ = _in_process(segments, tmp_path / "local")
        np.testing.assert_allclose(remote["audio"], local["audio"], atol=1e-6)
        np.testing.assert_allclose(remote["text"], local["text"], atol=1e-6)
        _, again = _in_process(segments, url)
        assert again["cache_misses"] == 0
        # the audio files' hash memo lives in the store too, not in a local folder of the
        # URL's path (the memo's path once lost the protocol and landed on the local disk)
        assert fsspec.filesystem("memory").exists(
            f"/hilbert-embed-{os.getpid()}/cache/file_hashes.json")
        assert not Path(f"/hilbert-embed-{os.getpid()}").exists()
    finally:
        fsspec.filesystem("memory").rm(f"/hilbert-embed-{os.getpid()}", recursive=True)


def test_whisper_features_on_the_cluster_equal_in_process(segments, dask_client, tmp_path):
    """CTranslate2's int8 kernels depend on the OpenMP thread count; the encoder fixes it."""
    whisper = ("whisper", {"device": "cpu"})
    rows = segments.iloc[:6]
    local, _ = embed_segments(rows, shared_encoder(*whisper[:1], **whisper[1]), None,
                              tmp_path / "local", progress=False)
    remote, _ = embed_segments_on_cluster(dask_client, rows, whisper, None, tmp_path / "remote",
                                          progress=False)
    np.testing.assert_allclose(local["audio"], remote["audio"], atol=1e-5)
    assert local["meta"] == remote["meta"]
