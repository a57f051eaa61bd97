"""Node of the ``demo_data`` pipeline: configuration wiring only (logic: ``hilbert_pipeline.demo``)."""

from __future__ import annotations

import logging

from hilbert_pipeline.demo import build_sotu_corpus

logger = logging.getLogger(__name__)


def build_demo_corpus(params: dict) -> dict:
    """Synthesise the SOTU corpus into ``params['output_dir']``; return a summary for the report."""
    summary = build_sotu_corpus(
        params["output_dir"],
        sentences_per_document=int(params["sentences_per_document"]),
        n_documents=params.get("n_documents"),
        seed=int(params["seed"]),
        voice=str(params.get("voice", "en-us")),
        rate=int(params.get("rate", 175)),
        sample_rate=int(params.get("sample_rate", 16000)),
        transcript_format=str(params.get("transcript_format", "json")),
        group_column=params.get("group_column") or None,
        workers=int(params.get("workers", 1)),
        progress=bool(params.get("progress", True)),
        classes=params.get("classes") or None,
    )
    logger.info("demo corpus in %s: %d documents, %.0f s of speech (built/reused in %.1f s)",
                summary["output_dir"], summary["n_documents"], summary["total_audio_seconds"],
                summary["build_seconds"])
    return summary
