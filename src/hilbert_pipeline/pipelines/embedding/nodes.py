"""Nodes of the ``embedding`` pipeline: configuration wiring only (logic: hilbert_pipeline.encoders)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from hilbert_pipeline.cluster import cluster_client
from hilbert_pipeline.encoders import EncoderError, embed_segments
from hilbert_pipeline.encoders.base import Encoder
from hilbert_pipeline.encoders.distributed import embed_segments_on_cluster
from hilbert_pipeline.encoders.registry import shared_encoder

log = logging.getLogger(__name__)


def encoder_spec(spec: dict | None, params: dict[str, Any], role: str
                 ) -> tuple[str, dict[str, Any]] | None:
    """``(name, options)`` of the ``embedding.<role>`` setting (None: modality off)."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or "name" not in spec:
        raise EncoderError(f"parameters_embedding.yml: embedding.{role} must be "
                           f"{{name: ..., options: {{...}}}} or null, got {spec!r}")
    if spec["name"] in (None, "", "none"):
        return None
    opts = dict(spec.get("options") or {})
    opts.setdefault("device", params.get("device", "auto"))
    if params.get("batch_size") is not None:
        opts.setdefault("batch_size", int(params["batch_size"]))
    return str(spec["name"]), opts


def build_encoder(spec: dict | None, params: dict[str, Any], role: str) -> Encoder | None:
    """The encoder of ``embedding.<role>`` (one object per process; weights load on first use)."""
    s = encoder_spec(spec, params, role)
    return None if s is None else shared_encoder(s[0], **s[1])


def embed_segments_node(segments: pd.DataFrame, params: dict[str, Any],
                        cluster: dict[str, Any] | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Embed every segment with the configured audio and text encoders, through the cache, in
    this process or on the Dask cluster of the ``cluster`` parameters."""
    threads = params.get("torch_threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    cache_dir = str(params.get("cache_dir") or "data/04_feature/cache")  # a folder or fsspec URL
    options = {"progress": bool(params.get("progress", True)),
               "source": "segments (data/03_primary/segments.parquet)",
               "max_read_seconds": float(params.get("max_read_seconds", 600.0))}
    with cluster_client(cluster) as client:
        if client is None:
            audio = build_encoder(params.get("audio_encoder"), params, "audio_encoder")
            text = build_encoder(params.get("text_encoder"), params, "text_encoder")
            features, summary = embed_segments(segments, audio, text, cache_dir, **options)
        else:
            features, summary = embed_segments_on_cluster(
                client, segments, encoder_spec(params.get("audio_encoder"), params,
                                               "audio_encoder"),
                encoder_spec(params.get("text_encoder"), params, "text_encoder"), cache_dir,
                **options)
    log.info("embedding: %d segments in %.1f s (%s seg/s), cache hits %d, computed %d; "
             "missing audio %d, missing text %d", summary["segments"], summary["seconds"],
             summary["segments_per_second"], summary["cache_hits"], summary["cache_misses"],
             summary["audio"]["missing"], summary["text"]["missing"])
    return features, summary
