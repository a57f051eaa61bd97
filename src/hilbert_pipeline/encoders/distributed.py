"""Embedding on a Dask cluster: the workers fill the feature cache, this process assembles.

Work is split by document (a document's segments stay together, so each task keeps the
length-sorted batching of :func:`embed_segments`); each task embeds its documents through the
shared content-addressed cache (``cache_dir``, a folder every worker can read and write: local
for a LocalCluster, a shared file system for several machines). Each worker builds each encoder
once (:func:`shared_encoder`) and keeps it loaded across its tasks.

Then the calling process runs :func:`embed_segments` itself on all segments: every vector is a
cache hit, so no model is loaded here and the features are those the workers computed, in the
same order as an in-process run. A run interrupted (or a worker lost) leaves every finished batch
in the cache; the next run computes only what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.encoders.cache import Store
from hilbert_pipeline.encoders.features import embed_segments, validate_segments
from hilbert_pipeline.encoders.registry import shared_encoder

log = logging.getLogger(__name__)

#: an encoder as tasks carry it: ``(name, options)`` or None (modality off)
Spec = tuple[str, dict[str, Any]] | None


def _build(spec: Spec):
    return None if spec is None else shared_encoder(spec[0], **spec[1])


def fill_cache(segments: pd.DataFrame, audio: Spec, text: Spec, cache_dir: str,
               max_read_seconds: float) -> dict[str, Any]:
    """Task: embed ``segments`` into the cache (on a worker); return what it computed."""
    t0 = time.perf_counter()
    _, summary = embed_segments(segments, _build(audio), _build(text), cache_dir, progress=False,
                                max_read_seconds=max_read_seconds)
    return {"documents": int(segments["doc_id"].nunique()), "segments": len(segments),
            "computed": summary["cache_misses"], "cache_hits": summary["cache_hits"],
            "seconds": time.perf_counter() - t0}


def document_tasks(segments: pd.DataFrame, n_tasks: int) -> list[pd.DataFrame]:
    """Split ``segments`` into at most ``n_tasks`` parts of whole documents with about the same
    number of segments each (largest documents first, each to the lightest part)."""
    sizes = segments.groupby("doc_id", sort=False).size().sort_values(ascending=False,
                                                                        kind="stable")
    n_tasks = max(1, min(int(n_tasks), len(sizes)))
    load = np.zeros(n_tasks)
    owner: dict[Any, int] = {}
    for doc, n in sizes.items():
        k = int(load.argmin())
        owner[doc] = k
        load[k] += n
    part = segments["doc_id"].map(owner).to_numpy()
    return [segments[part == k] for k in range(n_tasks) if (part == k).any()]


def embed_segments_on_cluster(client, segments: pd.DataFrame, audio: Spec, text: Spec,
                              cache_dir: str | Path, progress: bool = True,
                              source: str = "segments", max_read_seconds: float = 600.0,
                              tasks_per_worker: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`embed_segments` with the computing done by the workers of ``client``."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    validate_segments(segments, source)
    segments = segments.reset_index(drop=True)
    cache_dir = Store(cache_dir).root  # absolute for the workers; a URL stays a URL
    t0 = time.perf_counter()
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = document_tasks(segments, n_workers * int(tasks_per_worker))
    futures = [client.submit(fill_cache, part, audio, text, cache_dir, float(max_read_seconds),
                             pure=False, key=f"embed-{i}-{time.time_ns()}")
               for i, part in enumerate(parts)]
    done: list[Mapping[str, Any]] = []
    with tqdm(total=int(segments["doc_id"].nunique()), desc="embedding on the cluster",
              unit="doc", disable=not progress) as bar:
        for fut in as_completed(futures):
            res = fut.result()
            done.append(res)
            bar.update(res["documents"])
    cluster_seconds = time.perf_counter() - t0
    # everything is cached now: this assembles the features without loading any model
    features, summary = embed_segments(segments, _build(audio), _build(text), cache_dir,
                                       progress=False, source=source,
                                       max_read_seconds=max_read_seconds)
    summary["cluster"] = {
        "workers": n_workers, "tasks": len(parts),
        "computed": int(sum(r["computed"] for r in done)),
        "cache_hits": int(sum(r["cache_hits"] for r in done)),
        "seconds": round(cluster_seconds, 3),
        "task_seconds": round(float(sum(r["seconds"] for r in done)), 3),
    }
    summary["cache_misses"] = summary["cluster"]["computed"]
    summary["cache_hits"] = summary["cluster"]["cache_hits"]
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    n = summary["segments"]
    summary["segments_per_second"] = round(n / summary["seconds"], 2) if summary["seconds"] else None
    log.info("cluster embedding: %d tasks on %d workers, %d vectors computed, %d cache hits, "
             "%.1f s", len(parts), n_workers, summary["cache_misses"], summary["cache_hits"],
             cluster_seconds)
    return features, summary
