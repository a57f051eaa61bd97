"""Nodes of the ``embedding`` pipeline: configuration wiring only (logic: hilbert_pipeline.encoders)."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hilbert_pipeline.encoders import Encoder, EncoderError, embed_segments, get_encoder

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _shared_encoder(name: str, options_json: str) -> Encoder:
    """One encoder object per (name, options) per process, so a loaded model stays loaded."""
    return get_encoder(name, **json.loads(options_json))


def _encoder(spec: dict | None, params: dict[str, Any], role: str) -> Encoder | None:
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
    return _shared_encoder(str(spec["name"]), json.dumps(opts, sort_keys=True, default=str))


def embed_segments_node(segments: pd.DataFrame, params: dict[str, Any]
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Embed every segment with the configured audio and text encoders, through the cache."""
    threads = params.get("torch_threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    audio = _encoder(params.get("audio_encoder"), params, "audio_encoder")
    text = _encoder(params.get("text_encoder"), params, "text_encoder")
    cache_dir = Path(params.get("cache_dir") or "data/04_feature/cache")
    features, summary = embed_segments(
        segments, audio, text, cache_dir, progress=bool(params.get("progress", True)),
        source="segments (data/03_primary/segments.parquet)",
        max_read_seconds=float(params.get("max_read_seconds", 600.0)))
    log.info("embedding: %d segments in %.1f s (%s seg/s), cache hits %d, computed %d; "
             "missing audio %d, missing text %d", summary["segments"], summary["seconds"],
             summary["segments_per_second"], summary["cache_hits"], summary["cache_misses"],
             summary["audio"]["missing"], summary["text"]["missing"])
    return features, summary
