"""Nodes of the ``transcribe`` pipeline: configuration wiring only (logic: ``transcribe``)."""

from __future__ import annotations

import logging
from pathlib import Path

from hilbert_pipeline.transcribe import TranscribeOptions, transcribe_corpus

logger = logging.getLogger(__name__)


def transcribe_node(corpus: str, params: dict) -> dict:
    """Whisper transcripts for the manifest rows that have audio and no transcript (nothing to
    do, and no model loaded, when every row has one or ``transcribe.enabled`` is false)."""
    if not params.get("enabled", True) or not corpus or not Path(corpus).is_dir():
        return {"enabled": False, "output_dir": None}
    options = TranscribeOptions.from_params(params)
    report = transcribe_corpus(corpus, params.get("output_dir", "data/02_intermediate/"
                                                   "transcripts"), options,
                               progress=bool(params.get("progress", True)))
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
