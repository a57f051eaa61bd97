"""Nodes of the ``transcribe`` pipeline: configuration wiring only (logic: ``transcribe``)."""

from __future__ import annotations

import logging
from pathlib import Path

from hilbert_pipeline.cluster import cluster_client
from hilbert_pipeline.corpus.manifest import ManifestError, read_manifest
from hilbert_pipeline.transcribe import TranscribeOptions, transcribe_corpus

logger = logging.getLogger(__name__)


def transcribe_node(corpus: str, params: dict, cluster: dict | None = None) -> dict:
    """Whisper transcripts for the manifest rows that have audio and no transcript (nothing to
    do, and no model loaded, when every row has one or ``transcribe.enabled`` is false), in this
    process or on the Dask cluster of the ``cluster`` parameters."""
    if not params.get("enabled", True) or not corpus or not Path(corpus).is_dir():
        return {"enabled": False, "output_dir": None}
    options = TranscribeOptions.from_params(params)
    if not _needs_transcripts(Path(corpus)):
        cluster = None  # nothing to transcribe: no cluster started
    with cluster_client(cluster) as client:
        report = transcribe_corpus(corpus, params.get("output_dir", "data/02_intermediate/"
                                                       "transcripts"), options,
                                   progress=bool(params.get("progress", True)), client=client)
    report["enabled"] = True
    done, failed = report["transcribed"], report["failed"]
    if done or failed:
        fresh = sum(not e["cache"] for e in done.values())
        logger.info("transcribed %d recording(s) without transcript (%d from the cache) into %s; "
                    "real-time factor %s", len(done), len(done) - fresh, report["output_dir"],
                    report["rtf"])
    for doc_id, why in failed.items():
        logger.warning("no transcript for %r: %s", doc_id, why)
    return report


def _needs_transcripts(corpus: Path) -> bool:
    """Whether a manifest row has audio and no transcript (an unreadable manifest: let the
    transcribe step and validation report it)."""
    try:
        rows, _ = read_manifest(corpus / "manifest.csv", label_column=False)
    except ManifestError:
        return False
    return any(r.audio and not r.transcript for r in rows)
